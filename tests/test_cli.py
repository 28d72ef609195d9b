"""The weapp-launch command line, in process, on a temporary store: exit codes, JSON, and privacy."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from launch.app import SystemClock
from launch.cli import app
from tests.support.resources import make_resources

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
runner = CliRunner()


_res = None


@pytest.fixture(autouse=True)
def temp_store(tmp_path, monkeypatch):
    """The commands' Resources: a temporary store, handed in as the CLI's context object."""
    global _res
    monkeypatch.delenv("WEAPP_LAUNCH_DATABASE_URL", raising=False)
    # The CLI's start-up turns Prefect's ephemeral server off in its process; undo that after each test.
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_ENABLED", "false")
    _res = make_resources(tmp_path / "home", clock=SystemClock())
    yield _res
    _res.close()
    _res = None


def run(*args: str):
    return runner.invoke(app, list(args), obj=_res)


def raw_personal_values() -> set[str]:
    """Every ID number and mobile written in the example files."""
    found = set()
    for path in EXAMPLES.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r"\b\d{17}[\dXx]\b", text)) | set(re.findall(r"\b1[3-9]\d{9}\b", text))
    assert found, "the examples should contain personal values to look for"
    return found


def test_check_exit_codes_and_json():
    ok = run("check", str(EXAMPLES / "client-acme.yaml"), "--json", "--today", "2026-11-21")
    assert ok.exit_code == 0, ok.output
    body = json.loads(ok.stdout)
    assert body["ok"] is True and body["findings"] == [] and body["materials"]
    assert set(body["materials"][0]) >= {"kind", "label_zh", "label_en", "required", "provided"}

    bad = run("check", str(EXAMPLES / "broken-same-phone.yaml"), "--json", "--today", "2026-11-21")
    assert bad.exit_code == 1
    findings = json.loads(bad.stdout)["findings"]
    assert {f["rule"] for f in findings} == {"phones-must-differ", "remark-length"}
    assert all(set(f) == {"severity", "rule", "field", "message"} for f in findings)

    malformed = run("check", str(EXAMPLES / "broken-malformed.yaml"))
    assert malformed.exit_code == 2 and "line 15" in malformed.output
    missing = run("check", str(EXAMPLES / "no-such-file.yaml"))
    assert missing.exit_code == 2 and "no-such-file.yaml" in missing.output


def test_client_add_refuses_errors_and_duplicates():
    added = run("client", "add", str(EXAMPLES / "client-acme.yaml"))
    assert added.exit_code == 0 and re.fullmatch(r"c-[0-9a-f]{10}\n", added.stdout)
    # The same client again: its email is taken now (one email, one account), so preflight refuses it.
    again = run("client", "add", str(EXAMPLES / "client-acme.yaml"), "--json")
    assert again.exit_code == 1
    assert "email-already-used" in {f["rule"] for f in json.loads(again.stdout)["findings"]}
    refused = run("client", "add", str(EXAMPLES / "broken-shanghai.yaml"), "--json")
    assert refused.exit_code == 1
    assert [f["rule"] for f in json.loads(refused.stdout)["findings"]] == ["principal-must-be-legal-rep"]
    listed = json.loads(run("client", "list", "--json").stdout)
    assert [c["client_id"] for c in listed] == [added.stdout.strip()]


def test_workdays_and_provisional_answers():
    out = run("workdays", "add", "2026-09-30", "3")
    assert out.exit_code == 0 and out.stdout.strip() == "2026-10-10"  # National Day, then the adjusted Saturday
    between = run("workdays", "between", "2026-09-30", "2026-10-10", "--json")
    assert json.loads(between.stdout) == {"from": "2026-09-30", "to": "2026-10-10", "workdays": 3, "provisional": False}
    future = run("workdays", "add", "2026-12-28", "5", "--json")
    assert json.loads(future.stdout)["provisional"] is True and "provisional" in future.stderr
    bad = run("workdays", "add", "2026-13-01", "3")
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output


def test_plan_from_file_and_from_client_id():
    by_file = json.loads(run("plan", str(EXAMPLES / "client-acme.yaml"), "--start", "2026-09-24", "--json").stdout)
    assert by_file["go_live"] == {"earliest": "2026-10-10", "latest": "2026-11-05"}
    client_id = run("client", "add", str(EXAMPLES / "client-reuse.yaml")).stdout.strip()
    by_id = json.loads(run("plan", client_id, "--start", "2026-09-24", "--json").stdout)
    assert by_id["registration_path"] == "reuse_official_account"
    unknown = run("plan", "c-0000000000")
    assert unknown.exit_code == 2


def test_schema_gates_status_and_approve_errors():
    schema = json.loads(run("schema", "intake").stdout)
    assert "properties" in schema and "subject" in schema["properties"]
    gates = {g["gate"]: g for g in json.loads(run("gates", "--json").stdout)}
    bureau = {f["name"]: f for f in gates["bureau-review"]["fields"]}
    assert bureau["outcome"]["choices"] == ["approved", "rejected"] and bureau["decided_by"]["required"]
    assert json.loads(run("status", "--json").stdout) == []
    refused = run("approve", "l-0000000000", "release", "--by", "王", "--json")
    assert refused.exit_code == 1 and json.loads(refused.stdout)["problems"][0]["field"] == "launch_id"
    malformed = run("approve", "l-0000000000", "release", "--by", "王", "--set", "oops")
    assert malformed.exit_code == 2 and "field=value" in malformed.output


def test_no_raw_id_number_or_phone_in_any_output():
    raw = raw_personal_values()
    outputs = []
    for example in sorted(EXAMPLES.glob("*.yaml")):
        for args in (("check", str(example)), ("check", str(example), "--json"), ("client", "add", str(example)),
                     ("plan", str(example), "--start", "2026-09-24")):
            result = run(*args)
            outputs.append(result.stdout + result.stderr)
    for args in (("client", "list"), ("client", "list", "--json"), ("status",), ("status", "--json")):
        result = run(*args)
        outputs.append(result.stdout + result.stderr)
    text = "\n".join(outputs)
    assert "********" in text  # masked values are shown where a finding quotes one
    leaked = sorted(v for v in raw if v in text)
    assert not leaked, leaked
