"""The README tells the truth about settings and the two commands."""

from pathlib import Path

from launch.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`WEAPP_LAUNCH_{name.upper()}`" not in readme]
    assert not missing, missing


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "./dev test" in readme and "./dev test" in ci


def test_prefect_yaml_names_every_served_flow():
    import yaml

    from launch.orchestration.names import DEPLOYMENT_NAME
    from deployments.serve import flows

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    entry_flows = {d["entrypoint"].split(":")[1] for d in spec["deployments"]}
    assert {f.fn.__name__ for f in flows()} <= entry_flows
    assert {d["name"] for d in spec["deployments"]} == {DEPLOYMENT_NAME}
