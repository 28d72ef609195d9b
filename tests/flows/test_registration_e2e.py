"""Registration on a real Prefect server: a 个体户 on the reuse path, registered but 认证
failed, a failed 认证, and a profile decision over WeChat's change limits.

Issue 10 items 2, 3 and 5: "registered but 认证 failed" is an outcome of fast-registration;
a failed 认证 reopens ONLY the 认证 gate (attempt n+1); the profile gate closes the
registration phase, its change counters live on the client and a decision over a limit is
refused with the rule named and asked again; the filing branch starts after it.
"""

from __future__ import annotations

import pytest

from launch import runtime
from devtools.simulator import PASSING, Scenario, Simulator
from tests.flows.helpers import attempts, new_launch

pytestmark = [pytest.mark.server, pytest.mark.timeout(900)]

APPID = "wx5e6f7a8b9c0d1e2f"


def test_reuse_individual_business_registered_unverified_then_verification_only(stack):
    started, _ = new_launch("client-reuse-individual-business.yaml")
    launch_id = started["launch_id"]
    store = runtime.store()
    scenario = Scenario(answers={
        "fast-registration": [{"outcome": "registered_unverified", "appid": APPID, "linked": True}],
        "wechat-verification": [{"outcome": "failed", "reason": "对公打款信息不符 / payment details mismatch"}],
        # three name changes before release: over the limit of two -> refused, asked again
        "mini-program-profile": [{**PASSING["mini-program-profile"], "name_changes": 3},
                                 {**PASSING["mini-program-profile"], "name_changes": 1, "category_changes": 1}],
    })
    sim = Simulator(launch_id, scenario, repair_every=30)

    def filing_started() -> bool:
        return store.get_branch(launch_id, "filing") is not None

    assert sim.run(timeout=600, until=filing_started), (attempts(launch_id), sim.repairs)

    steps = [(s.step, s.attempt, s.status) for s in store.steps_for(launch_id)]
    registration = [s for s in steps if s[0] in {
        "official-account-authorization", "fast-registration", "admin-binding", "wechat-verification",
        "mini-program-profile", "email-activation", "subject-info"}]
    assert registration == [
        ("official-account-authorization", 1, "done"),
        ("fast-registration", 1, "done"),  # registered: the account exists
        ("admin-binding", 1, "done"),
        ("wechat-verification", 1, "rejected"),
        ("wechat-verification", 2, "done"),  # only the 认证 again
        ("mini-program-profile", 1, "rejected"),
        ("mini-program-profile", 2, "done"),
    ], steps
    assert store.get_step(launch_id, "fast-registration", 1).outcome == "registered_unverified"
    assert store.get_launch(launch_id).appid == APPID
    refused = store.get_step(launch_id, "mini-program-profile", 1)
    assert "profile-name-changes" in refused.note and " / " in refused.note

    client_id = store.get_launch(launch_id).client_id
    counted = {(c.field, c.count, c.attempt) for c in store.profile_changes(client_id)}
    assert counted == {("name", 1, 2), ("categories", 1, 2)}  # the refused decision counts nothing
