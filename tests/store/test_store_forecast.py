"""Commitments and the forecast on the store (issue 13): the history adapter, the committed
go-live date (revision 0005), and the risk alert enqueued once per change of level — also
from a watcher pass. Each backend (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from launch.domain.calendar import WorkCalendar
from launch.domain.catalogue import default_catalogue
from launch.domain.forecast import default_forecast_config
from launch.app.forecasting import check_commitments, check_risk, commit, forecast_for, forecast_lines, history_from_store

SH = ZoneInfo("Asia/Shanghai")
CAL, CAT, CFG = WorkCalendar(), default_catalogue(), default_forecast_config()


def at(y, mo, d, h=10):
    return datetime(y, mo, d, h, tzinfo=SH)


@pytest.fixture
def launch(store):
    """A standalone enterprise launch started 2026-06-01: registered by 06-03, design done,
    implementation running; the filing at the bureau since 06-10."""
    client_id = store.add_client("acme", "Acme Ltd", "Acme Shop", "广东", "enterprise", "standalone", {"n": 1}, {})
    lid = store.create_launch(client_id, created_at=at(2026, 6, 1, 9)).id
    for gate, opened, done in [("email-activation", at(2026, 6, 1), at(2026, 6, 1, 15)),
                               ("subject-info", at(2026, 6, 1, 15), at(2026, 6, 2)),
                               ("wechat-verification", at(2026, 6, 2), at(2026, 6, 3)),
                               ("mini-program-profile", at(2026, 6, 3), at(2026, 6, 3, 16)),
                               ("design-draft", at(2026, 6, 3, 17), at(2026, 6, 4)),
                               ("design-confirmation", at(2026, 6, 4), at(2026, 6, 5)),
                               ("filing-materials", at(2026, 6, 3, 17), at(2026, 6, 4)),
                               ("face-verification", at(2026, 6, 4), at(2026, 6, 4, 12)),
                               ("filing-submission", at(2026, 6, 4, 12), at(2026, 6, 5)),
                               ("first-review", at(2026, 6, 5), at(2026, 6, 8)),
                               ("sms-verification", at(2026, 6, 8), at(2026, 6, 9))]:
        store.open_step(lid, gate, 1, started_at=opened)
        store.finish_step(lid, gate, 1, "done", outcome="ok", at=done)
    store.start_branch(lid, "filing", started_at=at(2026, 6, 3, 17))
    store.start_branch(lid, "design", started_at=at(2026, 6, 3, 17))
    store.finish_branch(lid, "design", "done", at=at(2026, 6, 5))
    store.start_branch(lid, "implementation-1", started_at=at(2026, 6, 5))
    store.open_step(lid, "implementation", 1, started_at=at(2026, 6, 5))
    store.open_step(lid, "bureau-review", 1, started_at=at(2026, 6, 10))
    return lid


def test_history_from_the_store(store, launch):
    h = history_from_store(store, launch, CAT, SH)
    assert (h.start, h.registration_path, h.subject_type, h.finished) == (date(2026, 6, 1), "standalone", "enterprise", None)
    assert h.phases["registration"].actual_start == date(2026, 6, 1)
    assert h.phases["registration"].actual_finish == date(2026, 6, 3)
    assert (h.phases["design"].actual_start, h.phases["design"].actual_finish) == (date(2026, 6, 3), date(2026, 6, 5))
    assert h.phases["filing"].actual_start == date(2026, 6, 3) and h.phases["filing"].actual_finish is None
    assert h.phases["implementation"].actual_finish is None and h.phases["content"].actual_start is None
    assert h.gates["bureau-review"].open_since == date(2026, 6, 10)
    assert h.gates["first-review"].last_passed is True


def test_forecast_for_is_cached_and_narrower_than_at_start(store, launch):
    one = forecast_for(store, launch, catalogue=CAT, calendar=CAL, config=CFG, as_of=date(2026, 6, 12), samples=2000)
    two = forecast_for(store, launch, catalogue=CAT, calendar=CAL, config=CFG, as_of=date(2026, 6, 12), samples=2000)
    assert one is two
    assert one.p50 > date(2026, 6, 12) and one.p90 >= one.p50
    steps = {s.phase: s for s in one.steps}
    assert steps["design"].actual_finish == date(2026, 6, 5)
    assert steps["release"].critical and steps["registration"].critical
    assert steps["filing"].critical != steps["review"].critical  # one branch leads at the median
    lines = forecast_lines(one)
    assert lines[0].startswith("上线预测 / go-live forecast") and "P90" in lines[0]


def test_commitment_round_trip(store, launch):
    assert store.get_commitment(launch) is None
    c = commit(store, launch, date(2026, 7, 31), at(2026, 6, 1, 12))
    assert (c.committed_go_live, c.risk_level, c.risk_seq) == (date(2026, 7, 31), None, 0)
    assert [x.launch_id for x in store.open_commitments()] == [launch]
    store.set_launch_status(launch, "released")
    assert store.open_commitments() == []
    assert store.clear_commitment(launch) and store.get_commitment(launch) is None
    with pytest.raises(LookupError):
        commit(store, "l-nosuchthing", date(2026, 7, 31))


def _risk(store, launch, now):
    return check_risk(store, launch, catalogue=CAT, calendar=CAL, config=CFG, now=now, samples=2000)


def test_a_risk_alert_once_per_change_of_level(store, launch):
    now = at(2026, 6, 12)
    fc = forecast_for(store, launch, catalogue=CAT, calendar=CAL, config=CFG, as_of=now.date(), samples=2000)
    # committed before P50: late -> the account manager and a manager
    commit(store, launch, CAL.add_workdays(fc.p50, -1).value, now)
    late = _risk(store, launch, now)
    assert (late.previous, late.level, late.seq, late.tags) == (None, "late", 1, ("ops", "manager"))
    assert late.dedupe_key == f"{launch}:forecast-risk:1:late"
    assert _risk(store, launch, now) is None  # same level: nothing more
    # a second checker that read the old state enqueues nothing either
    stale = SimpleNamespace(launch_id=launch, committed_go_live=CAL.add_workdays(fc.p50, -1).value,
                            risk_level=None, risk_seq=0, last_p50=None, last_p90=None)
    assert check_risk(store, launch, catalogue=CAT, calendar=CAL, config=CFG, now=now, samples=2000,
                      commitment=stale) is None
    # moved between P50 and P90: at risk
    commit(store, launch, fc.p50, now)
    risk = _risk(store, launch, now)
    assert (risk.previous, risk.level, risk.seq, risk.tags) == (None, "at-risk", 2, ("ops",))
    # moved beyond P90: ok again, said once
    commit(store, launch, fc.p90, now)
    ok = _risk(store, launch, now)
    assert (ok.level, ok.seq, ok.alert_id) == ("ok", 3, None)  # a new commitment that is ok: nothing to say
    alerts = [a for a in store.list_alerts() if a.launch_id == launch]
    assert sorted(a.dedupe_key for a in alerts) == sorted([f"{launch}:forecast-risk:1:late",
                                                          f"{launch}:forecast-risk:2:at-risk"])
    by_key = {a.dedupe_key: a for a in alerts}
    a = by_key[f"{launch}:forecast-risk:1:late"]
    assert a.title.startswith("【紧急 urgent】Acme Ltd · Acme Shop · 上线预测：将延期")
    assert "承诺上线日" in a.body and "Committed go-live" in a.body and set(a.tags) == {"ops", "manager"}


def test_the_watcher_checks_commitments_once_per_pass(store, launch, tmp_path):
    from launch.app import FixedClock, Resources
    from launch.app.watcher import enqueue_due
    from launch.settings import Settings

    now = at(2026, 6, 12)
    fc = forecast_for(store, launch, catalogue=CAT, calendar=CAL, config=CFG, as_of=now.date(), samples=10_000)
    commit(store, launch, CAL.add_workdays(fc.p50, -2).value, now)
    res = Resources(settings=Settings(home=tmp_path, forecast_file=None, forecast_samples=10_000),
                    clock=FixedClock(now), _store=store, _calendar=CAL, _catalogue=CAT)
    report = enqueue_due(res, now, worker_id="w")
    risk = [e for e in report.enqueued if e.gate == "forecast-risk"]
    assert [(e.rung, e.attempt, e.severity) for e in risk] == [("forecast-risk-late", 1, "urgent")], report.errors
    again = enqueue_due(res, now, worker_id="w")
    assert not [e for e in again.enqueued if e.gate == "forecast-risk"] and not again.errors
    changes, errors = check_commitments(store, catalogue=CAT, calendar=CAL, config=CFG, now=now)
    assert changes == [] and errors == []
