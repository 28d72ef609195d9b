"""The watcher walks a launch through time with an injected clock: every rung of every
ladder is enqueued once, by the first pass at or after its moment, and never for a step
that has finished. Every expected moment is worked out by hand.

Calendar facts (2026, chinesecalendar; checked in test_calendar_facts):
  Fri 09-25 Mid-Autumn (off); Mon 09-28 – Wed 09-30 work; National Day 10-01..10-07 off;
  Thu 10-08, Fri 10-09 work; Sat 10-10 an adjusted working day (调休); Sun 10-11 off;
  ordinary weekend Sat 10-17, Sun 10-18.
Working time of an n-workday window = the rest of the opening day if it is a working day,
plus 24 h per working day after it; a workday deadline is the end (24:00) of the nth
working day; hours/days deadlines and their fractions are clock time.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import chinese_calendar
import pytest
from sqlalchemy import event

from launch.domain.alerts import default_ladders
from launch.app.watcher import watch_once
from tests.watcher.conftest import at, new_client, open_gate

STEP = timedelta(minutes=10)  # the watcher's schedule in this walk


def test_calendar_facts():
    assert not chinese_calendar.is_workday(date(2026, 9, 25))  # Mid-Autumn
    assert all(chinese_calendar.is_holiday(date(2026, 10, d)) for d in range(1, 8))
    assert chinese_calendar.is_workday(date(2026, 10, 10)) and date(2026, 10, 10).weekday() == 5
    assert not chinese_calendar.is_workday(date(2026, 10, 11))
    assert chinese_calendar.is_workday(date(2026, 10, 8)) and chinese_calendar.is_workday(date(2026, 10, 9))
    assert not chinese_calendar.is_workday(date(2026, 10, 17)) and not chinese_calendar.is_workday(date(2026, 10, 18))


def _expected(launch_id: str) -> dict[str, object]:
    k = lambda gate, attempt, rung: f"{launch_id}:{gate}:{attempt}:{rung}"  # noqa: E731
    return {
        # design-confirmation (5 workdays, standard ladder), opened Wed 09-30 10:00, right before
        # National Day. Window: 14 h of 09-30 + 10-08, 10-09, 10-10 (adjusted Sat), 10-12, 10-13
        # = 134 h; due 10-13 24:00. Half = 67 h: 14 + 24 + 24 + 5 -> Sat 10-10 05:00 (the
        # adjusted working Saturday). 80 % = 107.2 h: 14 + 72 = 86, 21.2 h of Mon 10-12 (Sun
        # 10-11 is off) -> 10-12 21:12. Closed 10-16 09:30: the daily overdue repeats of
        # 10-15 and 10-16 00:00 fire, 10-17's does not.
        k("design-confirmation", 1, "notice"): at(2026, 9, 30, 10),
        k("design-confirmation", 1, "half"): at(2026, 10, 10, 5),
        k("design-confirmation", 1, "eighty"): at(2026, 10, 12, 21, 12),
        k("design-confirmation", 1, "due"): at(2026, 10, 14),
        k("design-confirmation", 1, "overdue"): at(2026, 10, 14),
        k("design-confirmation", 1, "overdue-repeat-1"): at(2026, 10, 15),
        k("design-confirmation", 1, "overdue-repeat-2"): at(2026, 10, 16),
        # sms-verification #1 (24 clock hours, SMS ladder), SMS sent Sat 10-03 20:00 in the
        # holiday: holidays do not stop the MIIT clock. Due Sun 10-04 20:00.
        k("sms-verification", 1, "notice"): at(2026, 10, 3, 20),
        k("sms-verification", 1, "left-12h"): at(2026, 10, 4, 8),
        k("sms-verification", 1, "left-4h"): at(2026, 10, 4, 16),
        k("sms-verification", 1, "left-1h"): at(2026, 10, 4, 19),
        k("sms-verification", 1, "expired"): at(2026, 10, 4, 20),
        k("sms-verification", 1, "expired-2h"): at(2026, 10, 4, 22),
        # sms-verification #2, SMS sent Mon 10-05 09:00, verified at 15:00: only the notice;
        # 12 h left would be 10-05 21:00, after it finished.
        k("sms-verification", 2, "notice"): at(2026, 10, 5, 9),
        # face-verification (the admin's notice lives 24 h: the face-24h ladder, like the SMS
        # window's), opened Thu 10-08 09:00: due Fri 10-09 09:00. Closed late on 10-12 12:00,
        # so every rung fires, and the ladder has no repeats after "expired 2 h".
        k("face-verification", 1, "notice"): at(2026, 10, 8, 9),
        k("face-verification", 1, "left-12h"): at(2026, 10, 8, 21),
        k("face-verification", 1, "left-4h"): at(2026, 10, 9, 5),
        k("face-verification", 1, "left-1h"): at(2026, 10, 9, 8),
        k("face-verification", 1, "expired"): at(2026, 10, 9, 9),
        k("face-verification", 1, "expired-2h"): at(2026, 10, 9, 11),
        # implementation (3 workdays), opened Fri 10-16 16:00 before an ordinary weekend:
        # 8 h of Friday + Mon, Tue, Wed = 80 h; due Wed 10-21 24:00. Half = 40 h: 8 + 24
        # (Mon) + 8 -> Tue 10-20 08:00 (not Sun 10-18 08:00, as clock time would say);
        # 80 % = 64 h: 8 + 48 + 8 -> Wed 10-21 08:00. Closed 10-23 10:00 after one repeat.
        k("implementation", 1, "notice"): at(2026, 10, 16, 16),
        k("implementation", 1, "half"): at(2026, 10, 20, 8),
        k("implementation", 1, "eighty"): at(2026, 10, 21, 8),
        k("implementation", 1, "due"): at(2026, 10, 22),
        k("implementation", 1, "overdue"): at(2026, 10, 22),
        k("implementation", 1, "overdue-repeat-1"): at(2026, 10, 23),
    }


def test_walk_through_national_day_adjusted_saturday_and_a_weekend(watch_env):
    res = watch_env
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id, created_at=at(2026, 9, 29))
    events = [  # (moment, action): steps open and finish as the flows would make them
        (at(2026, 9, 30, 10), ("open", "design-confirmation", 1)),
        (at(2026, 10, 3, 20), ("open", "sms-verification", 1)),
        (at(2026, 10, 5, 9), ("close", "sms-verification", 1, "rejected")),  # timed out
        (at(2026, 10, 5, 9), ("open", "sms-verification", 2)),
        (at(2026, 10, 5, 15), ("close", "sms-verification", 2, "done")),
        (at(2026, 10, 8, 9), ("open", "face-verification", 1)),
        (at(2026, 10, 12, 12), ("close", "face-verification", 1, "done")),
        (at(2026, 10, 16, 9, 30), ("close", "design-confirmation", 1, "done")),
        (at(2026, 10, 16, 16), ("open", "implementation", 1)),
        (at(2026, 10, 23, 10), ("close", "implementation", 1, "done")),
    ]
    expected = _expected(launch.id)

    seen: dict[str, list] = {}
    passes = 0
    now = at(2026, 9, 30, 9, 0)
    end = at(2026, 10, 26, 0, 0)
    while now <= end:
        while events and events[0][0] <= now:
            moment, action = events.pop(0)
            if action[0] == "open":
                open_gate(res, launch.id, action[1], moment, attempt=action[2])
            else:
                store.finish_step(launch.id, action[1], action[2], action[3], outcome=action[3], at=moment)
        report = watch_once(res, now, worker_id="walker", deliver=False, repair_runs=False)
        assert report.ok, report.errors
        for e in report.enqueued:
            seen.setdefault(e.dedupe_key, []).append((now, e))
        passes += 1
        now += STEP

    # Every rung exactly once, nothing else (no rung of a finished step, no extra repeat).
    assert sorted(seen) == sorted(expected)
    assert all(len(v) == 1 for v in seen.values())
    for key, [(pass_time, e)] in seen.items():
        fire_at = expected[key]
        assert e.fire_at == fire_at, key
        assert fire_at <= pass_time < fire_at + STEP, (key, pass_time, fire_at)  # the first pass after
    # Every rung of both ladders was exercised.
    bases = {e.rung.rsplit("-", 1)[0] if e.rung.startswith("overdue-repeat-") else e.rung
             for [(_, e)] in seen.values()}
    for ladder in default_ladders().ladders.values():
        assert {r.id for r in ladder.rungs} <= bases, ladder.name

    # The outbox holds them with their moments; the cursors of finished steps are gone.
    alerts = {a.dedupe_key: a for a in store.list_alerts(launch_id=launch.id)}
    assert set(alerts) == set(expected)
    assert all(alerts[k].send_after == expected[k] for k in expected)
    assert all(a.status == "pending" and a.attempts == 0 for a in alerts.values())  # no channels here
    for step in store.steps_for(launch.id):
        assert not step.is_open and store.alert_cursor(step.id) is None

    # Tags: the client's gate reaches ops, the client and the client's own contacts; an
    # escalated rung adds the manager; the developers' gate reaches dev.
    dc = alerts[f"{launch.id}:design-confirmation:1:notice"]
    assert set(dc.tags) == {"ops", "client", f"client-{client_id}"}
    assert "manager" in alerts[f"{launch.id}:design-confirmation:1:overdue"].tags
    assert set(alerts[f"{launch.id}:implementation:1:half"].tags) == {"dev"}
    assert "manager" in alerts[f"{launch.id}:sms-verification:1:expired"].tags


def test_nothing_for_a_finished_step_or_an_ended_launch(watch_env):
    res = watch_env
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id)
    step = open_gate(res, launch.id, "content", at(2026, 10, 19, 9))
    store.finish_step(launch.id, "content", 1, "done", outcome="done", at=at(2026, 10, 19, 8, 59))
    # a pass long after: the step finished before its notice was ever sent
    report = watch_once(res, at(2026, 11, 30), deliver=False, repair_runs=False)
    assert report.examined == 0 and report.enqueued == []
    assert store.alert_cursor(step.id) is None

    other = store.create_launch(client_id)
    open_gate(res, other.id, "content", at(2026, 10, 19, 9))
    store.set_launch_status(other.id, "cancelled")
    report = watch_once(res, at(2026, 10, 30), deliver=False, repair_runs=False)
    assert report.examined == 1 and report.enqueued == []
    assert store.list_alerts() == []
    assert watch_once(res, at(2026, 10, 31), deliver=False, repair_runs=False).examined == 0  # cursor cleared


def test_provisional_deadline_says_so_in_every_alert(watch_env):
    res = watch_env
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id)
    # bureau-review, 20 workdays from Thu 2026-12-10 10:00 -> reaches 2027, whose holidays are not
    # published: Dec 11, 14–18, 21–25, 28–31 = 15 working days, Fri 2027-01-01 (New Year, guessed
    # off), Jan 4–8 = 5 more -> due 2027-01-08 24:00, provisional. Half: 14 h + 20 x 24 h = 494 h,
    # 247 h = 14 + 9 x 24 + 17 -> the 10th working day after 12-10 (Thu 12-24) at 17:00.
    step = open_gate(res, launch.id, "bureau-review", at(2026, 12, 10, 10))
    assert step.due_at == at(2027, 1, 9) and step.provisional
    r1 = watch_once(res, at(2026, 12, 10, 10, 1), deliver=False, repair_runs=False)
    r2 = watch_once(res, at(2026, 12, 24, 17, 0), deliver=False, repair_runs=False)
    assert [e.rung for e in r1.enqueued] == ["notice"] and [e.rung for e in r2.enqueued] == ["half"]
    assert r2.enqueued[0].fire_at == at(2026, 12, 24, 17) and r2.enqueued[0].provisional
    for alert in store.list_alerts(launch_id=launch.id):
        assert "[暂定 provisional]" in alert.title
        assert "2027-01-08 24:00 北京时间 [暂定 provisional]" in alert.body
        assert "provisional" in alert.body.split("\n\n", 1)[1]  # the English half says it too
    # The bureau is not a person to send a link to; no signed link in its alerts.
    assert all("token=" not in a.body for a in store.list_alerts(launch_id=launch.id))


def test_alert_text_names_client_gate_todo_due_run_and_signed_link(watch_env):
    res = watch_env
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id)
    store.set_launch_flow_run(launch.id, "0b5e6f1a-0000-4000-8000-000000000001")
    open_gate(res, launch.id, "design-confirmation", at(2026, 9, 30, 10),
              flow_run_id="0b5e6f1a-0000-4000-8000-00000000000d")
    watch_once(res, at(2026, 9, 30, 10, 5), deliver=False, repair_runs=False)
    [alert] = store.list_alerts(launch_id=launch.id)
    client = store.get_client(client_id)
    assert alert.title.startswith("【提示 notice】") and client.display_name in alert.title
    assert "客户确认设计" in alert.body and "Client confirms the design" in alert.body
    assert res.catalogue.gate("design-confirmation").todo_zh in alert.body
    assert "截止：2026-10-13 24:00 北京时间" in alert.body
    # the run parked at the gate (here a branch run) holds the Resume form
    assert "http://127.0.0.1:4200/runs/flow-run/0b5e6f1a-0000-4000-8000-00000000000d" in alert.body
    # a client gate: the outbox holds where the signed link goes, never a token ...
    from urllib.parse import parse_qs, urlsplit

    from launch.app.links import link_placeholder, render_links, verify_token

    assert "token=" not in alert.body
    held = next(line.split("：", 1)[1] for line in alert.body.splitlines() if line.startswith("处理链接"))
    assert held == link_placeholder(launch.id, "design-confirmation", 1)
    # ... and delivery signs a fresh link for the callback receiver, bound to the attempt
    sent_at = at(2026, 9, 30, 10, 20)
    body = render_links(res, alert.body, sent_at, dedupe_key=alert.dedupe_key)
    link = next(line.split("：", 1)[1] for line in body.splitlines() if line.startswith("处理链接"))
    parts = urlsplit(link)
    assert parts.path == f"/gates/{launch.id}/design-confirmation" and parts.netloc == "launch.example.com"
    claims = verify_token(parse_qs(parts.query)["token"][0], launch.id, "design-confirmation",
                          at(2026, 9, 30, 11), res.settings.link_keys())
    assert claims.attempt == 1
    assert claims.expires_at == sent_at + timedelta(hours=res.settings.link_ttl_hours)
    assert store.get_alert(alert.id).body == alert.body  # the rendered text never went back


def test_individual_client_name_is_masked(watch_env):
    res = watch_env
    store = res.store
    cid = store.add_client("ind-1", "张三丰", "三丰小店", "广东", "individual", "standalone", {"note": "test"}, {})
    launch = store.create_launch(cid)
    open_gate(res, launch.id, "email-activation", at(2026, 10, 12, 9))
    watch_once(res, at(2026, 10, 12, 9, 1), deliver=False, repair_runs=False)
    [alert] = store.list_alerts()
    assert "张**" in alert.title and "张三丰" not in alert.title + alert.body


def test_moved_deadline_and_cursor_is_a_lower_bound(watch_env):
    """A deadline moved (the calendar got published) resets the cursor: the new moments fire,
    rungs already sent are not sent again."""
    res = watch_env
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id)
    step = open_gate(res, launch.id, "first-review", at(2026, 10, 12, 9))  # 2 workdays: due 10-14 24:00
    r = watch_once(res, at(2026, 10, 12, 9, 5), deliver=False, repair_runs=False)
    assert [e.rung for e in r.enqueued] == ["notice"]
    # window: 15 h of Mon + 48 h = 63 h; half = 31.5 h -> Tue 10-13 16:30
    assert store.alert_cursor(step.id) == at(2026, 10, 13, 16, 30)
    assert watch_once(res, at(2026, 10, 13, 16, 29), deliver=False, repair_runs=False).examined == 0
    store.update_step_due(launch.id, "first-review", 1, due_at=at(2026, 10, 16), provisional=False)
    r = watch_once(res, at(2026, 10, 13, 16, 29), deliver=False, repair_runs=False)
    assert r.examined == 1 and r.enqueued == []  # notice again? no: its key is taken
    assert len(store.list_alerts()) == 1


def test_candidates_come_from_the_index(watch_env):
    """The enqueue selection is an index range scan on next_alert_at, not a table scan."""
    res = watch_env
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id)
    for i in range(30):
        open_gate(res, launch.id, "content", at(2026, 10, 12, 9) + timedelta(hours=i), attempt=i + 1)
    statements: list[tuple[str, object]] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if "next_alert_at" in statement and statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", grab)
    try:
        rows = store.steps_with_alerts_due(at(2026, 10, 12, 12), 100)
    finally:
        event.remove(store.engine, "before_cursor_execute", grab)
    assert [s.attempt for s, _ in rows] == [1, 2, 3, 4]
    [(sql, params)] = statements
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
            assert "ix_steps_next_alert_at" in plan, plan
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")  # a tiny table: ask whether the index CAN serve it
            plan = " ".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql, params))
            assert "ix_steps_next_alert_at" in plan, plan


@pytest.mark.parametrize("limit", [3])
def test_limit_leaves_the_rest_for_the_next_pass(watch_env, limit):
    res = watch_env
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id)
    for i in range(7):
        open_gate(res, launch.id, "content", at(2026, 10, 12, 9), attempt=i + 1)
    counts = Counter()
    for _ in range(4):
        r = watch_once(res, at(2026, 10, 12, 9, 5), limit=limit, deliver=False, repair_runs=False)
        counts.update(e.dedupe_key for e in r.enqueued)
    assert len(counts) == 7 and set(counts.values()) == {1}


def test_a_pass_that_catches_up_sends_one_still_overdue_not_one_per_missed_day(watch_env):
    res = watch_env
    store = res.store
    client_id, _ = new_client(res)
    launch = store.create_launch(client_id)
    open_gate(res, launch.id, "design-confirmation", at(2026, 9, 30, 10))  # due 10-13 24:00
    # the watcher was down until Tue 10-20 00:30: daily repeats of 10-15 .. 10-20 00:00 all came due
    r = watch_once(res, at(2026, 10, 20, 0, 30), deliver=False, repair_runs=False)
    assert [e.rung for e in r.enqueued] == ["notice", "half", "eighty", "due", "overdue", "overdue-repeat-6"]
    r = watch_once(res, at(2026, 10, 21, 0, 0), deliver=False, repair_runs=False)
    assert [e.rung for e in r.enqueued] == ["overdue-repeat-7"]
