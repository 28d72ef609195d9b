"""Alert ladders with an injected clock. Every expected moment is worked out by hand.

Calendar facts used (2026, chinesecalendar; re-checked in test_calendar_facts):
  National Day 10-01..10-07 off (Thu–Wed); Thu 10-08 and Fri 10-09 work; Sat 10-10 is an
  adjusted working day (调休); Sun 10-11 off. Ordinary weekend: Sat 10-17, Sun 10-18.
Working time of a workday window = the rest of the opening day if it is a working day,
plus 24 h for each of the n working days after it (calendar.workday_fraction_point).
"""

from __future__ import annotations

import re
import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from launch.domain.alerts import (
    Ladder,
    LadderError,
    Rung,
    RungRule,
    When,
    alert_dedupe_key,
    client_tag,
    default_ladders,
    due_rungs,
    format_due,
    load_ladders,
    planned_rungs,
    render_alert,
)
from launch.domain.calendar import DeadlineAnswer, WorkCalendar
from launch.domain.catalogue import default_catalogue, load_catalogue
from launch.domain.deadlines import gate_due

SH = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parents[2]


def at(y, mo, d, h=0, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=SH)


@pytest.fixture(scope="module")
def cal():
    return WorkCalendar()


@pytest.fixture(scope="module")
def cat():
    return default_catalogue()


def plan(cat, cal, gate_id, opened, now, **kw):
    gate = cat.gate(gate_id)
    due = gate_due(gate, opened, cal)
    return due, planned_rungs(gate, opened, due, cal, None, now, **kw)


def times(rungs):
    return [(r.rung_id, r.fire_at) for r in rungs]


def walk(cat, cal, gate_id, opened, start, until, step, closed_at=None):
    """A watcher pass every `step`: returns {dedupe key: (pass time, rung)} of the first
    pass that saw each rung due, and how many times a rung was found due again."""
    gate = cat.gate(gate_id)
    due = gate_due(gate, opened, cal)
    enqueued: dict[str, tuple[datetime, Rung]] = {}
    now = start
    while now <= until:
        for r in due_rungs(gate, opened, due, cal, None, now, closed_at=closed_at):
            key = alert_dedupe_key("l-1", gate.id, 1, r.rung_id)
            enqueued.setdefault(key, (now, r))  # the outbox's unique key: first one wins
        now += step
    return enqueued


# ------------------------------------------------------------------ facts


def test_calendar_facts():
    assert all(chinese_calendar.is_holiday(date(2026, 10, d)) for d in range(1, 8))
    assert chinese_calendar.is_workday(date(2026, 10, 8)) and chinese_calendar.is_workday(date(2026, 10, 9))
    assert date(2026, 10, 10).weekday() == 5 and chinese_calendar.is_workday(date(2026, 10, 10))
    assert not chinese_calendar.is_workday(date(2026, 10, 11))
    assert not chinese_calendar.is_workday(date(2026, 10, 17)) and not chinese_calendar.is_workday(date(2026, 10, 18))


def test_every_gate_names_a_known_ladder(cat):
    default_ladders().check_catalogue(cat)
    assert cat.gate("sms-verification").ladder == "sms"


# ------------------------------------------------------------------ standard ladder


def test_standard_ladder_for_20_working_days_opened_before_national_day(cat, cal):
    # bureau-review, 20 wd, opened Wed 09-30 10:00. Working days after 09-30: 10-08, 10-09,
    # 10-10 (Sat, adjusted), 10-12..16, 10-19..23, 10-26..30, 11-02, 11-03 = 20 -> due 11-04 00:00.
    # Working time 14 h + 20 × 24 h = 494 h.
    # 50% = 247 h: 14 h on 09-30, then 233 h = 9 days + 17 h -> 10th working day (10-20) 17:00.
    # 80% = 395.2 h: 381.2 h = 15 days + 21.2 h -> 16th working day (10-28) 21:12.
    due, rungs = plan(cat, cal, "bureau-review", at(2026, 9, 30, 10), now=at(2026, 9, 30, 10))
    assert due == DeadlineAnswer(at(2026, 11, 4), False)
    assert times(rungs) == [
        ("notice", at(2026, 9, 30, 10)),
        ("half", at(2026, 10, 20, 17)),
        ("eighty", at(2026, 10, 28, 21, 12)),
        ("due", at(2026, 11, 4)),
        ("overdue", at(2026, 11, 4)),
        ("overdue-repeat-1", at(2026, 11, 5)),  # only the next repeat is planned ahead
    ]
    assert [r.severity for r in rungs] == ["info", "info", "warning", "urgent", "overdue", "overdue"]
    assert [r.escalated for r in rungs] == [False, False, False, False, True, True]
    assert rungs[0].tags == ("ops",) and rungs[4].tags == ("ops", "manager")
    assert not any(r.provisional for r in rungs)
    assert all(r.fire_at.tzinfo is not None for r in rungs)


def test_a_rung_falls_on_the_adjusted_working_saturday(cat, cal):
    # email-activation, 1 wd, opened Fri 10-09 12:00: the next working day is Sat 10-10
    # (调休) -> due 10-11 00:00. Working time 12 h + 24 h = 36 h.
    # 50% = 18 h -> 6 h into Sat: 10-10 06:00. 80% = 28.8 h -> 16.8 h into Sat: 10-10 16:48.
    due, rungs = plan(cat, cal, "email-activation", at(2026, 10, 9, 12), now=at(2026, 10, 9, 12))
    assert due.at == at(2026, 10, 11)
    assert times(rungs)[:5] == [
        ("notice", at(2026, 10, 9, 12)),
        ("half", at(2026, 10, 10, 6)),
        ("eighty", at(2026, 10, 10, 16, 48)),
        ("due", at(2026, 10, 11)),
        ("overdue", at(2026, 10, 11)),
    ]
    assert rungs[0].tags == ("ops", "client")


def test_an_ordinary_weekend_is_skipped(cat, cal):
    # Same gate opened Fri 10-16 12:00: next working day Mon 10-19 -> due 10-20 00:00.
    # 50% = 18 h -> 6 h into Monday; 80% = 28.8 h -> Monday 16:48.
    due, rungs = plan(cat, cal, "email-activation", at(2026, 10, 16, 12), now=at(2026, 10, 16, 12))
    assert due.at == at(2026, 10, 20)
    assert times(rungs)[1:3] == [("half", at(2026, 10, 19, 6)), ("eighty", at(2026, 10, 19, 16, 48))]
    # Opened on Saturday 10-17 10:00 (a day off): working time is Monday only (24 h).
    # 50% -> Mon 12:00; 80% = 19.2 h -> Mon 19:12; nothing fires on the weekend but the notice.
    due, rungs = plan(cat, cal, "email-activation", at(2026, 10, 17, 10), now=at(2026, 10, 17, 10))
    assert due.at == at(2026, 10, 20)
    assert times(rungs)[:3] == [
        ("notice", at(2026, 10, 17, 10)),
        ("half", at(2026, 10, 19, 12)),
        ("eighty", at(2026, 10, 19, 19, 12)),
    ]


def test_clock_day_deadline_uses_plain_fractions_even_on_a_holiday(cal, tmp_path):
    # A gate given 3 days on the clock with the standard ladder (the face gate used to be
    # one; it is 24 hours now), opened 10-01 09:00 (a holiday: irrelevant).
    # due 10-04 09:00; 50% = 36 h -> 10-02 21:00; 80% = 57.6 h = 57 h 36 min -> 10-03 18:36.
    f = tmp_path / "p.yaml"
    f.write_text("gates:\n  face-verification:\n    deadline: {hours: null, days: 3}\n    ladder: standard\n",
                 encoding="utf-8")
    due, rungs = plan(load_catalogue(f), cal, "face-verification", at(2026, 10, 1, 9), now=at(2026, 10, 1, 9))
    assert due.at == at(2026, 10, 4, 9)
    assert times(rungs)[:5] == [
        ("notice", at(2026, 10, 1, 9)),
        ("half", at(2026, 10, 2, 21)),
        ("eighty", at(2026, 10, 3, 18, 36)),
        ("due", at(2026, 10, 4, 9)),
        ("overdue", at(2026, 10, 4, 9)),
    ]


# ------------------------------------------------------------------ sms ladder


def test_sms_ladder_12h_4h_1h_expired(cat, cal):
    # The 12381 SMS arrived Fri 10-09 14:30: 24 clock hours -> Sat 10-10 14:30.
    due, rungs = plan(cat, cal, "sms-verification", at(2026, 10, 9, 14, 30), now=at(2026, 12, 31))
    assert due == DeadlineAnswer(at(2026, 10, 10, 14, 30), False)
    assert times(rungs) == [
        ("notice", at(2026, 10, 9, 14, 30)),
        ("left-12h", at(2026, 10, 10, 2, 30)),
        ("left-4h", at(2026, 10, 10, 10, 30)),
        ("left-1h", at(2026, 10, 10, 13, 30)),
        ("expired", at(2026, 10, 10, 14, 30)),
        ("expired-2h", at(2026, 10, 10, 16, 30)),
    ]  # months later: still no repeats
    assert [r.severity for r in rungs] == ["warning", "warning", "urgent", "urgent", "urgent", "overdue"]
    assert [r.escalated for r in rungs] == [False] * 4 + [True] * 2
    assert rungs[4].tags == ("ops", "client", "manager")
    assert {r.ladder for r in rungs} == {"sms"}


def test_sms_window_during_the_holiday_counts_clock_hours(cat, cal):
    due, rungs = plan(cat, cal, "sms-verification", at(2026, 10, 3, 20), now=at(2026, 10, 3, 20))
    assert due.at == at(2026, 10, 4, 20)
    assert dict(times(rungs))["left-4h"] == at(2026, 10, 4, 16)


# ------------------------------------------------------------------ repeats, closing, determinism


def test_overdue_repeats_are_numbered_deterministically(cat, cal):
    opened = at(2026, 9, 30, 10)  # due 11-04 00:00
    now = at(2026, 11, 6, 2)  # due + 50 h: repeats at +24 h and +48 h have come
    _, rungs = plan(cat, cal, "bureau-review", opened, now)
    reps = [(r.rung_id, r.fire_at, r.occurrence) for r in rungs if r.base_id == "overdue-repeat"]
    assert reps == [
        ("overdue-repeat-1", at(2026, 11, 5), 1),
        ("overdue-repeat-2", at(2026, 11, 6), 2),
        ("overdue-repeat-3", at(2026, 11, 7), 3),  # the next one, not yet due
    ]
    assert all(r.escalated and "manager" in r.tags for r in rungs if r.base_id == "overdue-repeat")
    _, again = plan(cat, cal, "bureau-review", opened, now)
    assert again == rungs  # same inputs, same rungs
    gate = cat.gate("bureau-review")
    due = gate_due(gate, opened, cal)
    assert [r.rung_id for r in due_rungs(gate, opened, due, cal, None, now)][-2:] == [
        "overdue-repeat-1", "overdue-repeat-2"
    ]
    keys = [alert_dedupe_key("l-9", gate.id, 2, r.rung_id) for r in rungs]
    assert len(set(keys)) == len(keys)
    assert keys[0] == "l-9:bureau-review:2:notice"


def test_nothing_is_due_before_the_gate_opens(cat, cal):
    gate = cat.gate("bureau-review")
    opened = at(2026, 9, 30, 10)
    due = gate_due(gate, opened, cal)
    assert due_rungs(gate, opened, due, cal, None, opened - timedelta(microseconds=1)) == []
    assert [r.rung_id for r in due_rungs(gate, opened, due, cal, None, opened)] == ["notice"]


def test_nothing_fires_after_the_step_finished(cat, cal):
    gate = cat.gate("bureau-review")
    opened = at(2026, 9, 30, 10)
    due = gate_due(gate, opened, cal)
    closed = at(2026, 10, 25, 9)  # finished between "half" and "eighty"
    ids = [r.rung_id for r in planned_rungs(gate, opened, due, cal, None, at(2027, 3, 1), closed_at=closed)]
    assert ids == ["notice", "half"]
    closed = at(2026, 11, 5, 12)  # finished while overdue: no repeat after it
    ids = [r.rung_id for r in planned_rungs(gate, opened, due, cal, None, at(2027, 3, 1), closed_at=closed)]
    assert ids == ["notice", "half", "eighty", "due", "overdue", "overdue-repeat-1"]


def test_walk_through_national_day_every_rung_fires_once_at_its_moment(cat, cal):
    opened = at(2026, 9, 30, 10)
    step = timedelta(minutes=15)
    seen = walk(cat, cal, "bureau-review", opened, at(2026, 9, 29), at(2026, 11, 8), step,
                closed_at=at(2026, 11, 6, 12))
    expected = {
        "notice": at(2026, 9, 30, 10),
        "half": at(2026, 10, 20, 17),
        "eighty": at(2026, 10, 28, 21, 12),
        "due": at(2026, 11, 4),
        "overdue": at(2026, 11, 4),
        "overdue-repeat-1": at(2026, 11, 5),
        "overdue-repeat-2": at(2026, 11, 6),
    }
    assert {k.rsplit(":", 1)[1]: r.fire_at for k, (_, r) in seen.items()} == expected
    for pass_at, r in seen.values():
        assert r.fire_at <= pass_at < r.fire_at + step  # picked up by the first pass after its moment
    # nothing on the holiday but what was due before it
    assert not [r for p, r in seen.values() if date(2026, 10, 1) <= p.date() <= date(2026, 10, 7)]


def test_walk_sms_window_every_five_minutes(cat, cal):
    opened = at(2026, 10, 9, 14, 30)
    seen = walk(cat, cal, "sms-verification", opened, at(2026, 10, 9, 14), at(2026, 10, 12), timedelta(minutes=5))
    assert sorted((r.fire_at, k.rsplit(":", 1)[1]) for k, (_, r) in seen.items()) == [
        (at(2026, 10, 9, 14, 30), "notice"),
        (at(2026, 10, 10, 2, 30), "left-12h"),
        (at(2026, 10, 10, 10, 30), "left-4h"),
        (at(2026, 10, 10, 13, 30), "left-1h"),
        (at(2026, 10, 10, 14, 30), "expired"),
        (at(2026, 10, 10, 16, 30), "expired-2h"),
    ]
    assert all(p == r.fire_at for p, r in seen.values())  # 5-minute grid hits each moment exactly


# ------------------------------------------------------------------ provisional


def test_deadline_reaching_2027_is_provisional_everywhere(cat, cal):
    # bureau-review opened Thu 2026-12-10 10:00. Working days: 12-11, 12-14..18, 12-21..25,
    # 12-28..31 (15), then 2027 (unpublished; holidays.CN: 01-01 off) 01-04..08 -> 20th is
    # Fri 2027-01-08 -> due 2027-01-09 00:00, provisional.
    due, rungs = plan(cat, cal, "bureau-review", at(2026, 12, 10, 10), now=at(2026, 12, 10, 10))
    assert due == DeadlineAnswer(at(2027, 1, 9), True)
    assert all(r.provisional for r in rungs)
    title, body = render_alert(
        rungs[0], client_name="某某", mini_program_name="小店", gate_name_zh="管局审核",
        gate_name_en="Provincial bureau review", todo_zh="等待管局审核", attempt=1,
        due_at=due.at, provisional=due.provisional, launch_url="http://127.0.0.1:4200/runs/flow-run/x",
    )
    assert "[暂定 provisional]" in title
    assert "截止：2027-01-08 24:00 北京时间 [暂定 provisional]" in body
    assert "Due: 2027-01-08 24:00 Beijing time (UTC+8) [暂定 provisional]" in body


def test_published_deadline_is_not_marked(cat, cal):
    due, rungs = plan(cat, cal, "bureau-review", at(2026, 9, 30, 10), now=at(2026, 9, 30, 10))
    title, body = render_alert(
        rungs[1], client_name="某某", mini_program_name="小店", gate_name_zh="管局审核",
        gate_name_en="Provincial bureau review", todo_zh="等待管局审核", attempt=1,
        due_at=due.at, provisional=due.provisional, launch_url="http://ui/runs/1",
    )
    assert "暂定" not in title + body and "provisional" not in title + body


# ------------------------------------------------------------------ tags


def test_client_contact_tag_and_escalation(cat, cal):
    _, rungs = plan(cat, cal, "sms-verification", at(2026, 10, 9, 14, 30), now=at(2026, 10, 9, 14, 30),
                    client_id="C-42")
    assert rungs[0].tags == ("ops", "client", "client-c-42")
    assert rungs[-1].tags == ("ops", "client", "client-c-42", "manager")
    _, staff = plan(cat, cal, "release", at(2026, 10, 9, 14, 30), now=at(2026, 10, 9, 14, 30), client_id="C-42")
    assert staff[0].tags == ("ops",)  # a staff gate does not page the client
    assert client_tag("Acme 01") == "client-acme-01"


def test_a_rung_before_the_window_opens_is_left_out(cat, cal):
    ladder = Ladder("tight", (
        RungRule("notice", When("at_open"), "info"),
        RungRule("left-30h", When("before_due_hours", 30.0), "warning"),
        RungRule("left-2h", When("before_due_hours", 2.0), "urgent"),
    ))
    gate = cat.gate("sms-verification")
    opened = at(2026, 10, 9, 14, 30)
    due = gate_due(gate, opened, cal)
    ids = [r.rung_id for r in planned_rungs(gate, opened, due, cal, ladder, opened)]
    assert ids == ["notice", "left-2h"]


# ------------------------------------------------------------------ ladders as data


def write(tmp_path, text, name="ladders.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_packaged_ladders_load_and_shapes(cat):
    ls = default_ladders()
    assert set(ls.ladders) == {"standard", "sms", "face-24h"}
    assert ls.escalate_to == "manager"
    std = ls["standard"]
    assert [r.id for r in std.rungs] == ["notice", "half", "eighty", "due", "overdue", "overdue-repeat"]
    assert std.rungs[-1].repeat_every_hours == 24
    with pytest.raises(KeyError, match="未知的提醒阶梯.*unknown alert ladder"):
        ls["nope"]


def test_override_merges_rung_by_rung(tmp_path, cat, cal):
    p = write(tmp_path, """\
        escalate_to: boss
        ladders:
          standard:
            - {id: half, severity: warning}           # only the severity changes
            - {id: eighty, drop: true}                # removed
            - {id: morning, when: {before_due_hours: 16}, severity: warning}  # added
          gentle:
            - {id: notice, when: {at_open: true}, severity: info}
        """)
    ls = load_ladders(p, catalogue=cat)
    std = ls["standard"]
    assert [r.id for r in std.rungs] == ["notice", "half", "due", "overdue", "overdue-repeat", "morning"]
    half = std.rungs[1]
    assert (half.severity, half.when) == ("warning", When("fraction", 0.5))
    assert ls["sms"] == default_ladders()["sms"].__class__("sms", default_ladders()["sms"].rungs, "boss")
    assert "gentle" in ls
    gate = cat.gate("bureau-review")
    opened = at(2026, 9, 30, 10)
    due = gate_due(gate, opened, cal)
    rungs = planned_rungs(gate, opened, due, cal, None, opened, ladders=ls)
    assert ("morning", at(2026, 11, 3, 8)) in times(rungs)
    assert [r.tags for r in rungs if r.rung_id == "overdue"] == [("ops", "boss")]


@pytest.mark.parametrize(
    ("doc", "key", "rule"),
    [
        ("ladders: {standard: [{id: half, severity: loud}]}", "ladders.standard[1].severity", "bad-severity"),
        ("ladders: {standard: [{id: half, when: {fraction: 1.5}}]}", "ladders.standard[1].when.fraction", "bad-number"),
        ("ladders: {standard: [{id: half, when: {at_open: true, at_due: true}}]}", "ladders.standard[1].when", "bad-when"),
        ("ladders: {standard: [{id: half, when: {sometime: 3}}]}", "ladders.standard[1].when.sometime", "bad-when"),
        ("ladders: {standard: [{id: half, repeat_every_hours: 2}]}", "ladders.standard[1].repeat_every_hours",
         "repeat-needs-after-due"),
        ("ladders: {standard: [{id: overdue-repeat, repeat_every_hours: 0.01}]}",
         "ladders.standard[5].repeat_every_hours", "bad-number"),
        ("ladders: {standard: [{id: half, colour: red}]}", "ladders.standard[1].colour", "unknown-key"),
        ("ladders: {new: [{id: Bad_Id, when: {at_open: true}, severity: info}]}", "ladders.new[0].id", "bad-id"),
        ("ladders: {new: [{id: a, when: {at_open: true}, severity: info}, {id: a, when: {at_due: true}, severity: info}]}",
         "ladders.new[1].id", "duplicate-id"),
        ("ladders: {new: [{id: x, when: {at_due: true}, severity: info, repeat_every_hours: 1}, "
         "{id: x-2, when: {at_due: true}, severity: info}]}", "ladders.new[0].id", "id-clash"),
        ("ladders: {new: []}", "ladders.new", "empty-ladder"),
        ("ladders: {new: {id: a}}", "ladders.new", "not-a-list"),
        ("ladders: {new: [{when: {at_open: true}}]}", "ladders.new[0].id", "missing-id"),
        ("ladders: {new: [{id: a, severity: info}]}", "ladders.new[0].when", "missing-when"),
        ("escalate_to: Big Boss", "escalate_to", "bad-tag"),
        ("rungs: []", "rungs", "unknown-key"),
        ("ladders: {standard: [{id: half, when: {fraction: 0.5}}], standard: []}", "standard", "duplicate-key"),
    ],
)
def test_bad_override_names_file_key_and_rule_in_both_languages(tmp_path, doc, key, rule):
    p = write(tmp_path, doc + "\n")
    with pytest.raises(LadderError) as ei:
        load_ladders(p)
    err = ei.value
    assert (err.key, err.rule) == (key, rule)
    assert err.path == str(p)  # the user's file, not the packaged one
    msg = str(err)
    assert "提醒阶梯文件" in msg and "ladders file" in msg and f"[{rule}]" in msg


def test_yaml_that_is_not_a_mapping_and_unreadable_files(tmp_path):
    with pytest.raises(LadderError, match="顶层必须是映射.*top level must be a mapping"):
        load_ladders(write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(LadderError) as ei:
        load_ladders(tmp_path / "missing.yaml")
    assert ei.value.rule == "unreadable"


def test_a_gate_naming_an_unknown_ladder_is_refused(tmp_path):
    proc = write(tmp_path, "gates:\n  release: {ladder: pager}\n", "process.yaml")
    cat = load_catalogue(proc)
    with pytest.raises(LadderError, match="release.*pager") as ei:
        load_ladders(catalogue=cat)
    assert ei.value.rule == "unknown-ladder"


def test_alerts_module_stays_pure():
    src = (ROOT / "launch" / "domain" / "alerts.py").read_text(encoding="utf-8")
    for mod in ("prefect", "sqlalchemy", "apprise", "httpx"):
        assert not re.search(rf"^\s*(import|from)\s+{mod}\b", src, re.M), mod
    assert "datetime.now" not in src and "time.time" not in src


# ------------------------------------------------------------------ rendering


ID = "440106199001011234"
PHONE = "13812345678"
ID_RE = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
PHONE_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")


def sms_rung(cat, cal, rung_id="left-4h"):
    _, rungs = plan(cat, cal, "sms-verification", at(2026, 10, 9, 14, 30), now=at(2026, 10, 9, 14, 30))
    return next(r for r in rungs if r.rung_id == rung_id)


def test_render_chinese_first_english_beneath_with_links(cat, cal):
    gate = cat.gate("sms-verification")
    title, body = render_alert(
        sms_rung(cat, cal), client_name="广州某某科技有限公司", mini_program_name="某某小店",
        gate_name_zh=gate.name_zh, gate_name_en=gate.name_en, todo_zh=gate.todo_zh, attempt=2,
        due_at=at(2026, 10, 10, 14, 30), provisional=False,
        launch_url="http://127.0.0.1:4200/runs/flow-run/6f1c2d3e-0000-4000-8000-abcdefabcdef",
        action_url="http://127.0.0.1:8780/staff/act?token=abc.def",
    )
    assert title == "【紧急 urgent】广州某某科技有限公司 · 某某小店 · 工信部短信核验：剩余 4 小时"
    zh, en = body.split("\n\n", 1)
    assert zh.splitlines()[0] == "剩余 4 小时：工信部短信核验（第 2 轮）"
    assert "截止：2026-10-10 14:30 北京时间" in zh
    assert f"待办：{gate.todo_zh}" in zh
    assert "流程运行（Prefect）：http://127.0.0.1:4200/runs/flow-run/6f1c2d3e-0000-4000-8000-abcdefabcdef" in zh
    assert "处理链接（已签名）：http://127.0.0.1:8780/staff/act?token=abc.def" in zh
    assert en.splitlines()[0] == "4 hours left: MIIT 12381 SMS verification (attempt 2)"
    assert "Due: 2026-10-10 14:30 Beijing time (UTC+8)" in en
    assert "Launch run (Prefect UI): http://127.0.0.1:4200/runs/flow-run/" in en
    assert "Action link (signed): http://127.0.0.1:8780/staff/act?token=abc.def" in en


def test_render_without_action_link_and_escalated(cat, cal):
    title, body = render_alert(
        sms_rung(cat, cal, "expired"), client_name="某某", mini_program_name="小店", gate_name_zh="工信部短信核验",
        gate_name_en="MIIT 12381 SMS verification", todo_zh="重新提交", attempt=1,
        due_at=at(2026, 10, 10, 14, 30), provisional=False, launch_url="http://ui/runs/1",
    )
    assert "处理链接" not in body and "Action link" not in body
    assert "升级通知主管" in body and "escalated to a manager" in body


def test_render_never_lets_a_raw_id_number_or_phone_through(cat, cal):
    title, body = render_alert(
        sms_rung(cat, cal),
        client_name=f"张三 {PHONE}",
        mini_program_name=f"店 {ID}",
        gate_name_zh="工信部短信核验",
        gate_name_en=f"SMS check for +86{PHONE}",
        todo_zh=f"请联系负责人（手机 {PHONE}，身份证 {ID}）；备用 139-8765-4321",
        attempt=1,
        due_at=at(2026, 10, 10, 14, 30),
        provisional=False,
        launch_url=f"http://127.0.0.1:4200/runs/flow-run/1?phone={PHONE}",
        action_url=f"http://127.0.0.1:8780/act/{ID}?t=x",
        reason=f"客户称 {PHONE} 收不到短信，证件号 {ID[:-1]}X",
    )
    text = title + body
    assert not ID_RE.search(text) and not PHONE_RE.search(text)
    assert PHONE not in text and ID not in text and ID[:-1] + "X" not in text
    assert "138****5678" in text and "440106********1234" in text and "440106********123X" in text


def test_format_due_end_of_day_and_other_zones():
    assert format_due(at(2026, 10, 9, 18)) == ("2026-10-09 18:00 北京时间", "2026-10-09 18:00 Beijing time (UTC+8)")
    assert format_due(at(2026, 10, 11))[0] == "2026-10-10 24:00 北京时间"  # end of the adjusted Saturday
    utc = datetime(2026, 10, 9, 10, 0, tzinfo=ZoneInfo("UTC"))
    assert format_due(utc)[0] == "2026-10-09 18:00 北京时间"
    assert format_due(utc, tz="UTC")[0] == "2026-10-09 10:00 UTC"


def test_naive_times_are_refused(cat, cal):
    gate = cat.gate("release")
    opened = at(2026, 10, 9, 10)
    due = gate_due(gate, opened, cal)
    with pytest.raises(ValueError, match="timezone-aware"):
        planned_rungs(gate, opened, due, cal, None, datetime(2026, 10, 9, 10))
