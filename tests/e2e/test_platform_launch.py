"""One launch from registration to release with the tool operating WeChat, on real parts:
`weapp-launch demo` as ops start it — a Prefect server, the deployments' serve() runner, the
receiver on uvicorn, the WeChat stand-in speaking WeChat's protocol over real HTTP (signed,
AES-encrypted pushes; the first code review's push dropped on purpose), a real SMTP server and
phone endpoint for the alerts. The simulator plays only people (the client, developers, and on
the stand-in the legal person, the admin's face, the principal's SMS, WeChat's and the bureau's
reviewers). Asserted from what WeChat saw (the stand-in's own call and push logs, in the demo's
record) and from the store and Prefect's database the run left behind:

- released, and no WeChat-side step was entered by a person;
- the dropped push was recovered by the watcher asking WeChat, and nothing else was lost;
- every acting call ran once per attempt (one registration task, one face task per attempt, one
  submit_audit per review, one release), and WeChat never answered "already in review" (85009);
- the bureau's approval carries the filing number the tool asked WeChat for;
- alerts reached the mailbox and the phone endpoint;
- the client's personal data is nowhere in Prefect's database or the processes' logs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.demo import RECORD_FILE
from launch.app import Resources
from launch.domain.forms import MINI_PROGRAM_FILING_NUMBER
from launch.settings import Settings
from tests.support.stack import ROOT

# Its own xdist group (tests/conftest.py). Alone the demo takes about 3 minutes; beside the other
# server groups on two cores it took 5.5: the module may take 15 (pytest-timeout's default is 10).
pytestmark = [pytest.mark.server, pytest.mark.e2e, pytest.mark.timeout(900)]

# Personal data in examples/client-acme.yaml (sample values): ID numbers and phones.
PERSONAL = ("440106198503121237", "440304199208184561", "13812340001", "13912340002", "13912340003",
            "13912340005", "91440101MA5C00000K")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`weapp-launch demo` in a clean environment (nothing of this test process's Prefect or
    store settings), its record and the folder it left."""
    home = tmp_path_factory.mktemp("platform-demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "WEAPP_LAUNCH_"))}
    env["WEAPP_LAUNCH_HOME"] = str(home)
    cli = Path(sys.executable).parent / "weapp-launch"
    demo = subprocess.Popen([str(cli), "demo", "--no-keep", "--timeout", "600"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = demo.communicate(timeout=780)  # within the module's 900 s
    except subprocess.TimeoutExpired:
        demo.terminate()  # SIGTERM: the demo stops the server, runner and receiver it started
        stdout, stderr = demo.communicate(timeout=90)
    base = home / "demo"
    assert demo.returncode == 0, f"demo failed ({demo.returncode}):\n{stdout[-6000:]}\n{stderr[-3000:]}"
    record = json.loads((base / RECORD_FILE).read_text(encoding="utf-8"))
    return record, base, stdout


def attempts(record: dict, gate: str) -> int:
    return len({row["attempt"] for row in record["decisions"] if row["gate"] == gate})


def test_released_with_no_wechat_side_step_entered_by_a_person(demo):
    record, _, stdout = demo
    assert record["released"] is True
    assert record["wechat_side_by_person"] == []
    assert "WeChat-side steps entered by a person: 无 / none" in stdout
    kinds = {row["gate"]: row["kind"] for row in record["decisions"]}
    # the tool acted itself where it can, WeChat's push or the tool's question decided the rest
    assert kinds["review-submission"] == "tool" and kinds["release"] == "tool"
    assert kinds["platform-registration"] == "push"
    assert kinds["sms-verification"] == "poll" and kinds["wechat-verification"] == "poll"
    assert record["counts"].get("tool", 0) >= 3 and record["counts"].get("push", 0) >= 3


def test_the_dropped_push_is_recovered_by_the_watchers_poll(demo):
    record, _, _ = demo
    assert [d["push"] for d in record["dropped"]] == ["weapp_audit_fail"]
    [recovered] = record["recovered"]
    assert (recovered["gate"], recovered["attempt"], recovered["outcome"]) == ("code-review", 1, "failed")
    assert record["not_recovered"] == []
    row = next(r for r in record["decisions"] if (r["gate"], r["attempt"]) == ("code-review", 1))
    assert (row["kind"], row["channel"]) == ("poll", "wechat-api")


def test_every_acting_call_ran_once_per_attempt(demo):
    record, _, _ = demo
    calls, refused = record["calls"], record["refused"]
    reviews = attempts(record, "code-review")
    assert reviews == 2  # the first failed (its push dropped), the resubmission passed
    assert calls["submit_audit"] == reviews
    assert calls["release"] == 1
    assert calls["fastregisterenterpriseweapp"] == 1
    assert calls["create_icp_verifytask"] == attempts(record, "face-verification")
    assert calls["apply_icp_filing"] == attempts(record, "filing-submission")
    assert calls["get_online_icp_order"] >= 1  # the filing number, asked of WeChat
    assert 85009 not in refused.get("submit_audit", [])  # never submitted while one was in review
    assert "release" not in refused and "apply_icp_filing" not in refused


def test_the_bureau_approval_carries_the_number_wechat_gave(demo):
    record, base, _ = demo
    res = Resources(settings=Settings(_env_file=None, home=base / "weapp"))
    try:
        launch = res.store.get_launch(record["launch_id"])
        assert launch.status == "released"
        approved = [d for d in res.store.history(launch.id) if d.gate == "bureau-review" and d.outcome == "approved"]
        [decision] = approved
        assert decision.channel in ("wechat", "wechat-api")
        assert MINI_PROGRAM_FILING_NUMBER.match(decision.payload["filing_number"]), decision.payload
    finally:
        res.close()


def test_alerts_reached_the_mailbox_and_the_phone(demo):
    record, base, _ = demo
    assert record["mails"] > 0 and record["phone_messages"] > 0
    mails = (base / "mail.log").read_text(encoding="utf-8")
    # the legal person's registration link and the 12381 SMS reminder went out
    assert "Subject: 请法人 24 小时内完成小程序注册授权" in mails
    assert mails.count("工信部短信核验：短信已发出") == len([r for r in record["decisions"]
                                                     if r["gate"] == "sms-verification"])


def test_no_personal_data_in_prefect_or_the_logs(demo):
    _, base, stdout = demo
    places = {"prefect.db": b"".join(p.read_bytes() for p in base.glob("prefect.db*"))}
    for log in base.glob("*.log"):
        if log.name not in ("mail.log", "phone.log"):  # the alerts' sinks: what the client's people receive
            places[log.name] = log.read_bytes()
    places["Prefect's results"] = b"".join(p.read_bytes() for p in (base / "results").rglob("*") if p.is_file())
    places["demo output"] = stdout.encode()
    assert {"prefect.db", "server.log", "runner.log", "api.log"} <= set(places) and places["Prefect's results"]
    for where, content in places.items():
        for value in PERSONAL:
            assert value.encode() not in content, f"{value[:3]}… in {where}"
