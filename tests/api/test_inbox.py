"""The inbox survives a crash: rows left unapplied are applied by apply_pending and at start-up."""

from __future__ import annotations

import time

import pytest

from launch.app import Resources
from launch.app.decisions import submit_decision
from launch.app.inbox import accept_push, apply_event, apply_pending
from launch.receiver.workers import Applier
from launch.wechat.events import parse_event, to_xml
from tests.api.conftest import current, wait_applied


@pytest.fixture
def res(receiver) -> Resources:
    """The receiver's own resources (its store, settings and clock)."""
    return receiver.res


def _filing(made, status, sms=None):
    fields = {"AppId": "wx0000000000c0ffee", "CreateTime": int(time.time()),
              "InfoType": "notify_apply_icpfiling_result", "authorizer_appid": made.appid, "beian_status": status}
    if sms is not None:
        fields["sms_verify_status"] = sms
    return parse_event(to_xml(fields))


def test_apply_pending_applies_rows_left_unapplied(receiver, make_launch, res):
    app_applier = receiver.app.state.applier
    app_applier.stop()  # the receiver "crashed" right after the inbox write
    try:
        made = make_launch()
        row, created = accept_push(res, _filing(made, 5))
        assert created and row.applied_at is None
        again, created = accept_push(res, _filing(made, 5))  # the same event once more: nothing new
        assert not created and again.id == row.id
        assert res.store.history(made.launch_id) == []
        outcomes = {o.inbox_id: o for o in apply_pending(res)}
        assert outcomes[row.id].result == "applied" and outcomes[row.id].launch_id == made.launch_id
        (d,) = res.store.history(made.launch_id)
        assert (d.gate, d.outcome, d.inbox_id) == ("bureau-review", "rejected", row.id)
        assert "管局驳回" in d.payload["reason"]
        # applying again changes nothing
        assert row.id not in {o.inbox_id for o in apply_pending(res)}
        assert apply_event(res, res.store.get_event(row.id)).result == "applied"
        assert len(res.store.history(made.launch_id)) == 1
    finally:
        app_applier.start()


def test_rows_left_unapplied_are_applied_at_start_up(receiver, make_launch, res):
    app_applier = receiver.app.state.applier
    app_applier.stop()
    try:
        made = make_launch()
        row, _ = accept_push(res, _filing(made, 4, 3))
        # a crash half-way: the decision was recorded but the row never marked applied
        submit_decision(res, made.launch_id, "first-review", {"decided_by": "微信推送 / WeChat push", "outcome": "passed"},
                        "wechat", inbox_id=row.id)
        assert res.store.get_event(row.id).applied_at is None
        restarted = Applier(res, interval=3600)  # a new process: drains once at start, no push needed
        restarted.start()
        try:
            applied = wait_applied(row.event_key)
        finally:
            restarted.stop()
        assert applied.result == "applied"  # sms-verification recorded now, first-review was already there
        got = {(d.gate, d.outcome) for d in res.store.history(made.launch_id)}
        assert got == {("first-review", "passed"), ("sms-verification", "timed_out")}
    finally:
        app_applier.start()


def test_noted_and_no_launch_results(receiver, make_launch, res):
    app_applier = receiver.app.state.applier
    app_applier.stop()
    try:
        made = make_launch()
        filed, _ = accept_push(res, _filing(made, 6))

        class Ghost:
            appid = "wx00000000000000aa"

        lost, _ = accept_push(res, _filing(Ghost, 3))
        results = {o.inbox_id: o for o in apply_pending(res)}
        assert results[filed.id].result == "noted" and "备案号" in results[filed.id].detail
        assert results[lost.id].result == "no-launch"
        assert res.store.get_event(filed.id).launch_id == made.launch_id
        assert res.store.history(made.launch_id) == []
    finally:
        app_applier.start()
