"""Working-day calendar. Expected values are worked out by hand from the published schedule.

2026 (State Council notice, as shipped in chinesecalendar 1.11; checked in test_source_facts):
  New Year      01-01..01-03 off (Thu–Sat), Sun 01-04 works
  Spring Fest.  02-15..02-23 off (Sun–Mon), Sat 02-14 and Sat 02-28 work
  Labour Day    05-01..05-05 off, Sat 05-09 works
  Mid-Autumn    09-25..09-27 off (Fri–Sun)
  National Day  10-01..10-07 off (Thu–Wed), Sun 09-20 and Sat 10-10 work
2027 is not published: holidays.CN guesses 01-01, Spring Festival 02-05 (eve, Fri)..02-10
  (02-06 Sat, 02-07 Sun, observed 02-08..02-10), no adjusted workdays.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays
import pytest

from launch.domain.calendar import (
    EXAMPLE_CALENDAR_FILE,
    CalendarFileError,
    CountAnswer,
    DateAnswer,
    DeadlineAnswer,
    WorkCalendar,
    YearSchedule,
    load_calendar_file,
)

SH = ZoneInfo("Asia/Shanghai")
D = date


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar()


@pytest.fixture(scope="module")
def cal27() -> WorkCalendar:
    return WorkCalendar.from_file(EXAMPLE_CALENDAR_FILE)


def at(y, m, d, hh=0, mm=0, tz=SH) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=tz)


# ----------------------------------------------------------------- the sources themselves


def test_source_facts_2026():
    off = [D(2026, 1, 1), D(2026, 1, 2), D(2026, 1, 3)]
    off += [D(2026, 2, 15) + timedelta(days=i) for i in range(9)]  # 02-15..02-23
    off += [D(2026, 9, 25), D(2026, 9, 26), D(2026, 9, 27)]
    off += [D(2026, 10, 1) + timedelta(days=i) for i in range(7)]  # 10-01..10-07
    for d in off:
        assert chinese_calendar.is_workday(d) is False, d
    adjusted = [D(2026, 1, 4), D(2026, 2, 14), D(2026, 2, 28), D(2026, 5, 9), D(2026, 9, 20), D(2026, 10, 10)]
    for d in adjusted:
        assert d.weekday() >= 5 and chinese_calendar.is_workday(d) is True, d
    assert chinese_calendar.get_holiday_detail(D(2026, 2, 14)) == (False, "Spring Festival")
    assert chinese_calendar.get_holiday_detail(D(2026, 10, 10)) == (False, "National Day")
    for d in (D(2026, 2, 24), D(2026, 9, 24), D(2026, 9, 28), D(2026, 10, 8), D(2026, 12, 31)):
        assert chinese_calendar.is_workday(d) is True, d
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(D(2027, 1, 4))


def test_source_facts_2027_guess():
    cn = holidays.CN(years=2027)
    assert {D(2027, 2, 5) + timedelta(days=i) for i in range(6)} <= set(cn)  # 02-05..02-10
    assert D(2027, 2, 11) not in cn and D(2027, 1, 1) in cn and D(2027, 1, 4) not in cn


def test_builtin_years_match_chinese_calendar_every_day(cal):
    d = D(2004, 1, 1)
    while d <= D(2026, 12, 31):
        ans = cal.is_workday(d)
        assert (ans.value, ans.provisional) == (chinese_calendar.is_workday(d), False), d
        d += timedelta(days=1)


def test_pure_no_prefect():
    code = "import sys, launch.domain.calendar; assert not any(m.split('.')[0]=='prefect' for m in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


# ----------------------------------------------------------------- is_workday / is_known


def test_is_workday(cal):
    assert cal.is_workday(D(2026, 1, 4)).value is True  # adjusted Sunday
    assert cal.is_workday(D(2026, 1, 2)).value is False  # Friday, New Year
    assert cal.is_workday(D(2026, 3, 7)).value is False  # plain Saturday
    assert cal.is_workday(D(2026, 3, 9)).value is True  # plain Monday
    a = cal.is_workday(D(2027, 2, 8))  # Monday, guessed Spring Festival (observed)
    assert (a.value, a.provisional) == (False, True)
    a = cal.is_workday(D(2027, 2, 14))  # Sunday, no adjusted workdays in a guess
    assert (a.value, a.provisional) == (False, True)
    a = cal.is_workday(D(2027, 3, 1))
    assert (a.value, a.provisional) == (True, True)
    with pytest.raises(TypeError):
        bool(cal.is_workday(D(2026, 3, 9)))  # `if cal.is_workday(d):` would be a bug


def test_is_known(cal, cal27):
    assert cal.is_known(D(2026, 12, 31)) and cal.is_known(D(2004, 1, 1))
    assert not cal.is_known(D(2027, 1, 1)) and not cal.is_known(D(2003, 12, 31))
    assert cal27.is_known(D(2027, 6, 1)) and not cal27.is_known(D(2028, 1, 1))


# ----------------------------------------------------------------- add_workdays


def test_spring_festival_2026(cal):
    start = D(2026, 2, 13)  # Friday before the festival
    assert cal.add_workdays(start, 1) == DateAnswer(D(2026, 2, 14), False)  # adjusted Saturday
    assert cal.add_workdays(start, 2) == DateAnswer(D(2026, 2, 24), False)  # 15..23 off
    assert cal.add_workdays(start, 6) == DateAnswer(D(2026, 2, 28), False)  # 24,25,26,27 then Sat 28
    assert cal.add_workdays(start, 7) == DateAnswer(D(2026, 3, 2), False)  # Sun 03-01 off
    assert cal.add_workdays(D(2026, 2, 12), 5).value == D(2026, 2, 26)  # 13,14,24,25,26
    assert cal.add_workdays(D(2026, 2, 16), 1).value == D(2026, 2, 24)  # from inside the holiday
    assert cal.workdays_between(start, D(2026, 2, 28)) == CountAnswer(6, False)
    assert cal.workdays_between(D(2026, 2, 14), D(2026, 2, 24)).value == 1
    assert cal.workdays_between(D(2026, 2, 14), D(2026, 2, 23)).value == 0


def test_national_day_2026(cal):
    assert cal.add_workdays(D(2026, 9, 18), 1).value == D(2026, 9, 20)  # Sat 19 off, Sun 20 works
    assert cal.add_workdays(D(2026, 9, 24), 1).value == D(2026, 9, 28)  # Mid-Autumn 25..27
    start = D(2026, 9, 30)
    assert cal.add_workdays(start, 1).value == D(2026, 10, 8)
    assert cal.add_workdays(start, 2).value == D(2026, 10, 9)
    assert cal.add_workdays(start, 3).value == D(2026, 10, 10)  # adjusted Saturday
    assert cal.add_workdays(start, 4).value == D(2026, 10, 12)  # Sun 11 off
    assert cal.workdays_between(start, D(2026, 10, 12)) == CountAnswer(4, False)
    # 20,21,22,23,24 + 28,29,30 + 8,9,10 + 12
    assert cal.workdays_between(D(2026, 9, 18), D(2026, 10, 12)) == CountAnswer(12, False)


def test_new_year_2026_adjusted_sunday(cal):
    assert cal.add_workdays(D(2025, 12, 31), 1) == DateAnswer(D(2026, 1, 4), False)
    assert cal.add_workdays(D(2025, 12, 31), 2).value == D(2026, 1, 5)
    assert cal.workdays_between(D(2025, 12, 31), D(2026, 1, 5)).value == 2


def test_plain_weekend(cal):
    assert cal.add_workdays(D(2026, 3, 6), 1).value == D(2026, 3, 9)  # Fri -> Mon
    assert cal.add_workdays(D(2026, 3, 7), 1).value == D(2026, 3, 9)  # Sat -> Mon
    assert cal.add_workdays(D(2026, 3, 6), 5).value == D(2026, 3, 13)
    assert cal.workdays_between(D(2026, 3, 6), D(2026, 3, 8)).value == 0
    assert cal.workdays_between(D(2026, 3, 6), D(2026, 3, 13)).value == 5


def test_n_zero(cal):
    assert cal.add_workdays(D(2026, 2, 16), 0) == DateAnswer(D(2026, 2, 16), False)  # a holiday stays
    assert cal.add_workdays(D(2027, 3, 1), 0) == DateAnswer(D(2027, 3, 1), False)  # nothing examined
    assert cal.workdays_between(D(2027, 3, 1), D(2027, 3, 1)) == CountAnswer(0, False)


def test_negative(cal):
    assert cal.add_workdays(D(2026, 2, 24), -1).value == D(2026, 2, 14)
    assert cal.add_workdays(D(2026, 2, 24), -2).value == D(2026, 2, 13)
    assert cal.add_workdays(D(2026, 3, 9), -1).value == D(2026, 3, 6)  # Mon -> Fri
    assert cal.add_workdays(D(2026, 3, 7), -1).value == D(2026, 3, 6)  # Sat -> Fri
    assert cal.add_workdays(D(2026, 10, 8), -1).value == D(2026, 9, 30)
    assert cal.add_workdays(D(2026, 1, 5), -2) == DateAnswer(D(2025, 12, 31), False)  # 01-04, then 12-31
    assert cal.workdays_between(D(2026, 2, 24), D(2026, 2, 13)) == CountAnswer(-2, False)
    assert cal.workdays_between(D(2026, 10, 12), D(2026, 9, 30)).value == -4
    # backwards out of 2027 into 2026 examines only 2026 days
    assert cal.add_workdays(D(2027, 1, 1), -1) == DateAnswer(D(2026, 12, 31), False)
    assert cal.add_workdays(D(2027, 1, 5), -1) == DateAnswer(D(2027, 1, 4), True)


def test_into_2027_is_provisional(cal):
    assert cal.add_workdays(D(2026, 12, 30), 1) == DateAnswer(D(2026, 12, 31), False)
    assert cal.add_workdays(D(2026, 12, 31), 1) == DateAnswer(D(2027, 1, 4), True)  # 01-01 off, weekend
    assert cal.add_workdays(D(2027, 2, 4), 1) == DateAnswer(D(2027, 2, 11), True)  # 02-05..02-10 off
    assert cal.add_workdays(D(2027, 2, 4), 3) == DateAnswer(D(2027, 2, 15), True)  # 11, 12, (13/14 off) 15
    assert cal.workdays_between(D(2027, 2, 4), D(2027, 2, 15)) == CountAnswer(3, True)
    assert cal.workdays_between(D(2026, 12, 30), D(2027, 1, 4)) == CountAnswer(2, True)
    assert cal.workdays_between(D(2026, 12, 1), D(2026, 12, 31)).provisional is False


def test_calendar_file_makes_2027_known(cal27):
    # the example file: holidays 02-05..02-13, adjusted Sunday 02-14 and Saturday 02-20
    assert cal27.add_workdays(D(2026, 12, 31), 1) == DateAnswer(D(2027, 1, 4), False)
    assert cal27.add_workdays(D(2027, 2, 4), 1) == DateAnswer(D(2027, 2, 14), False)
    assert cal27.add_workdays(D(2027, 2, 4), 2) == DateAnswer(D(2027, 2, 15), False)
    # 14, 15..19, 20
    assert cal27.workdays_between(D(2027, 2, 4), D(2027, 2, 20)) == CountAnswer(7, False)
    assert cal27.add_workdays(D(2027, 12, 31), 1).provisional is True  # 2028 still guessed


def test_calendar_file_in_tmp(tmp_path):
    p = tmp_path / "cal.yaml"
    p.write_text('2027:\n  holidays: ["2027-01-01", 2027-02-08]\n  workdays: ["2027-01-09"]\n', encoding="utf-8")
    c = WorkCalendar.from_file(p)
    assert c.file_years == (2027,)
    assert c.add_workdays(D(2027, 1, 8), 1) == DateAnswer(D(2027, 1, 9), False)  # Sat 01-09 works
    assert c.add_workdays(D(2027, 2, 5), 1) == DateAnswer(D(2027, 2, 9), False)  # Mon 02-08 off
    assert c.is_workday(D(2027, 2, 10)).value is True  # holidays.CN's guess no longer applies


def test_file_overrides_builtin_year(tmp_path):
    p = tmp_path / "cal.yaml"
    p.write_text('2026:\n  holidays: ["2026-01-01"]\n', encoding="utf-8")
    c = WorkCalendar.from_file(p)
    assert c.is_workday(D(2026, 2, 16)).value is True and c.is_workday(D(2026, 2, 14)).value is False


def test_extra_years_in_memory():
    c = WorkCalendar({2027: YearSchedule(holidays=[D(2027, 1, 1)], workdays=[D(2027, 1, 2)])})
    assert c.add_workdays(D(2026, 12, 31), 1) == DateAnswer(D(2027, 1, 2), False)
    with pytest.raises(CalendarFileError) as e:
        WorkCalendar({2027: YearSchedule(holidays=[D(2027, 1, 4)], workdays=[D(2027, 1, 4)])})
    assert e.value.rule == "workday-not-weekend"


def test_from_file_none_is_builtin(cal):
    c = WorkCalendar.from_file(None)
    assert c.file_years == () and c.is_known(D(2027, 1, 1)) is False


def test_round_trip_property(cal):
    # add_workdays(a, n) == b  =>  workdays_between(a, b) == n (for n < 0 when a is a workday)
    a = D(2025, 12, 1)
    while a <= D(2027, 2, 1):
        for n in (0, 1, 2, 5, 20, 60):
            b = cal.add_workdays(a, n).value
            assert cal.workdays_between(a, b).value == n, (a, n)
            if cal.is_workday(a).value:
                c = cal.add_workdays(a, -n).value
                assert cal.workdays_between(a, c).value == -n, (a, -n)
        a += timedelta(days=3)


def test_types_refused(cal):
    with pytest.raises(TypeError):
        cal.add_workdays(datetime(2026, 3, 9, tzinfo=SH), 1)
    with pytest.raises(TypeError):
        cal.add_workdays(D(2026, 3, 9), 1.0)
    with pytest.raises(TypeError):
        cal.workdays_between("2026-03-09", D(2026, 3, 10))


# ----------------------------------------------------------------- deadlines


def test_due_after_workdays(cal):
    ans = cal.due_after_workdays(at(2026, 2, 13, 15, 0), 2)
    assert ans == DeadlineAnswer(at(2026, 2, 25), False)  # end of Tue 02-24
    assert ans.at.utcoffset() == timedelta(hours=8) and ans.at.tzinfo.key == "Asia/Shanghai"
    # 2026-02-13 16:30 UTC is Sat 02-14 00:30 in Shanghai: an adjusted workday; +1 -> 02-24
    utc = datetime(2026, 2, 13, 16, 30, tzinfo=timezone.utc)
    assert cal.due_after_workdays(utc, 1).at == at(2026, 2, 25)
    assert cal.due_after_workdays(at(2026, 3, 9, 10), 0).at == at(2026, 3, 10)  # end of today
    assert cal.due_after_workdays(at(2026, 9, 30, 18), 3).at == at(2026, 10, 11)  # end of Sat 10-10
    assert cal.due_after_workdays(at(2026, 12, 31, 9), 1) == DeadlineAnswer(at(2027, 1, 5), True)


def test_due_after_hours(cal):
    # SMS at 22:30 during the festival: 24 clock hours regardless of holidays
    assert cal.due_after_hours(at(2026, 2, 16, 22, 30), 24) == DeadlineAnswer(at(2026, 2, 17, 22, 30), False)
    assert cal.due_after_hours(at(2026, 3, 7, 23, 15), 1.5).at == at(2026, 3, 8, 0, 45)  # across midnight
    assert cal.due_after_hours(at(2026, 12, 31, 12), 24) == DeadlineAnswer(at(2027, 1, 1, 12), False)
    # elapsed time, not wall-clock: Berlin springs forward on 2026-03-29; Shanghai does not
    berlin = datetime(2026, 3, 28, 20, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # = 19:00 UTC = 03-29 03:00 SH
    ans = cal.due_after_hours(berlin, 24)
    assert ans.at == at(2026, 3, 30, 3, 0) and ans.at.utcoffset() == timedelta(hours=8)
    assert ans.at.tzinfo.key == "Asia/Shanghai"


def test_due_after_days(cal):
    assert cal.due_after_days(at(2026, 9, 30, 10), 3) == DeadlineAnswer(at(2026, 10, 3, 10), False)
    assert cal.due_after_days(at(2026, 1, 1, 6), 0.5).at == at(2026, 1, 1, 18)


def test_naive_refused(cal):
    naive = datetime(2026, 3, 9, 10, 0)
    for call in (
        lambda: cal.due_after_workdays(naive, 1),
        lambda: cal.due_after_hours(naive, 24),
        lambda: cal.due_after_days(naive, 3),
        lambda: cal.workday_fraction_point(naive, 2, 0.5),
    ):
        with pytest.raises(ValueError, match="timezone-aware"):
            call()
    with pytest.raises(ValueError):
        cal.due_after_hours(at(2026, 3, 9), float("nan"))


# ----------------------------------------------------------------- fraction points


def test_fraction_points_plain_week(cal):
    start = at(2026, 3, 9, 12)  # Mon noon, n=2 -> deadline Thu 03-12 00:00; working 12+24+24 = 60 h
    assert cal.workday_fraction_point(start, 2, 0.0).at == start
    assert cal.workday_fraction_point(start, 2, 0.2).at == at(2026, 3, 10)  # 12 h: end of Monday
    assert cal.workday_fraction_point(start, 2, 0.5) == DeadlineAnswer(at(2026, 3, 10, 18), False)  # 30 h
    assert cal.workday_fraction_point(start, 2, 1.0).at == at(2026, 3, 12)


def test_fraction_points_skip_weekend_and_holidays(cal):
    # Fri 18:00, n=1 -> deadline end of Mon 03-09; working 6 h Fri + 24 h Mon = 30 h; 50% = 15 h
    assert cal.workday_fraction_point(at(2026, 3, 6, 18), 1, 0.5).at == at(2026, 3, 9, 9)
    # Fri 02-13 00:00, n=2 -> workdays Sat 02-14, Tue 02-24; 72 h in all
    start = at(2026, 2, 13)
    assert cal.workday_fraction_point(start, 2, 0.5).at == at(2026, 2, 14, 12)  # 36 h
    assert cal.workday_fraction_point(start, 2, 0.75).at == at(2026, 2, 24, 6)  # 54 h
    assert cal.workday_fraction_point(start, 2, 1.0).at == at(2026, 2, 25)
    # started on a holiday: only Tue 02-24 counts
    assert cal.workday_fraction_point(at(2026, 2, 16, 10), 1, 0.5).at == at(2026, 2, 24, 12)


def test_fraction_points_edges(cal):
    assert cal.workday_fraction_point(at(2026, 3, 9, 18), 0, 0.5).at == at(2026, 3, 9, 21)  # 6 h left
    assert cal.workday_fraction_point(at(2026, 3, 7, 18), 0, 0.5).at == at(2026, 3, 8)  # Sat: no working time
    assert cal.workday_fraction_point(at(2026, 12, 31, 12), 1, 0.5) == DeadlineAnswer(at(2027, 1, 4, 6), True)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError):
            cal.workday_fraction_point(at(2026, 3, 9), 2, bad)
    with pytest.raises(ValueError):
        cal.workday_fraction_point(at(2026, 3, 9), -1, 0.5)


def test_fraction_point_on_a_23_hour_day():
    # Another zone, to exercise days that are not 24 h: Berlin springs forward on Sun 2026-03-29.
    berlin = ZoneInfo("Europe/Berlin")
    c = WorkCalendar({2026: YearSchedule(holidays=[D(2026, 1, 1)], workdays=[D(2026, 3, 29)])}, tz="Europe/Berlin")
    start = datetime(2026, 3, 28, 0, 0, tzinfo=berlin)  # Saturday: no working time
    # the only working day is Sun 03-29, 23 h long; 50 % = 11.5 h after 00:00 CET = 12:30 CEST
    assert c.workday_fraction_point(start, 1, 0.5).at == datetime(2026, 3, 29, 12, 30, tzinfo=berlin)
    assert c.workday_fraction_point(start, 1, 1.0).at == datetime(2026, 3, 30, 0, 0, tzinfo=berlin)
    assert c.due_after_workdays(start, 1).at.tzinfo.key == "Europe/Berlin"


def test_fraction_point_fast_path_matches_general_path(cal, monkeypatch):
    cases = [
        (at(2026, 2, 13, 9, 17) + timedelta(hours=h), n, f)
        for h in range(0, 24 * 30, 37)
        for n in (0, 1, 3, 20)
        for f in (0.0, 0.1, 1 / 3, 0.5, 0.9, 1.0)
    ]
    fast = [cal.workday_fraction_point(*c) for c in cases]
    monkeypatch.setattr(WorkCalendar, "_uniform_days", lambda self, a, b: False)
    slow = [cal.workday_fraction_point(*c) for c in cases]
    assert fast == slow


# ----------------------------------------------------------------- calendar files


def test_example_file_is_marked_and_valid():
    text = EXAMPLE_CALENDAR_FILE.read_text(encoding="utf-8")
    assert "EXAMPLE ONLY" in text and "示例" in text
    years = load_calendar_file(EXAMPLE_CALENDAR_FILE)
    assert set(years) == {2027} and D(2027, 2, 14) in years[2027].workdays


BAD_FILES = [
    ("", "not-a-mapping", None),
    ("- 2027\n", "not-a-mapping", None),
    ('"2027":\n  holidays: ["2027-01-01"]\n', "year-not-int", "2027"),
    ('1800:\n  holidays: ["1800-01-01"]\n', "year-out-of-range", "1800"),
    ("2027: [2027-01-01]\n", "year-not-a-mapping", "2027"),
    ('2027:\n  holidays: ["2027-01-01"]\n  holiday: ["2027-01-02"]\n', "unknown-key", "holiday"),
    ('2027:\n  workdays: ["2027-01-09"]\n', "missing-holidays", "holidays"),
    ('2027:\n  holidays: "2027-01-01"\n', "not-a-list", "holidays"),
    ('2027:\n  holidays: ["2027-13-01"]\n', "bad-date", "2027-13-01"),
    ('2027:\n  holidays: ["1/1/2027"]\n', "bad-date", "1/1/2027"),
    ('2027:\n  holidays: ["2027-01-01", "2028-01-01"]\n', "date-outside-year", "2028-01-01"),
    ('2027:\n  holidays: ["2027-12-31..2028-01-02"]\n', "date-outside-year", "2028-01-02"),
    ('2027:\n  holidays: ["2027-02-13..2027-02-05"]\n', "range-reversed", "2027-02-13..2027-02-05"),
    ('2027:\n  holidays: ["2027-02-05..2027-02-13"]\n  workdays: ["2027-02-13"]\n', "holiday-and-workday",
     "2027-02-13"),
    ('2027:\n  holidays: ["2027-01-01"]\n  workdays: ["2027-01-06"]\n', "workday-not-weekend", "2027-01-06"),
    ('2027:\n  holidays: ["2027-01-01"]\n2027:\n  holidays: ["2027-01-02"]\n', "duplicate-key", "2027"),
    ("2027:\n  holidays: [\n", "yaml-syntax", None),
]


@pytest.mark.parametrize(("text", "rule", "mention"), BAD_FILES, ids=[b[1] + str(i) for i, b in enumerate(BAD_FILES)])
def test_bad_calendar_files(tmp_path, text, rule, mention):
    p = tmp_path / "holidays-2027.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarFileError) as e:
        WorkCalendar.from_file(p)
    err = e.value
    assert isinstance(err, ValueError) and err.rule == rule
    msg = str(err)
    assert str(p) in msg and "日历文件" in msg and "calendar file" in msg
    if mention:
        assert mention in msg
    if rule not in ("not-a-mapping", "yaml-syntax"):
        assert "2027" in msg or "1800" in msg  # the year is named


def test_bad_file_names_entry_index(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text('2027:\n  holidays: ["2027-01-01", "2027-02-30"]\n', encoding="utf-8")
    with pytest.raises(CalendarFileError) as e:
        load_calendar_file(p)
    assert (e.value.year, e.value.key, e.value.index) == (2027, "holidays", 1)
    assert "#2" in str(e.value) and "第 2 项" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(CalendarFileError) as e:
        WorkCalendar.from_file(tmp_path / "nope.yaml")
    assert e.value.rule == "unreadable" and "nope.yaml" in str(e.value)


