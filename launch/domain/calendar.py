"""The mainland-China working-day calendar (工作日历).

Pure domain code: nothing here imports Prefect, reads the clock or needs a server.
Every moment is passed in by the caller; every datetime must be timezone-aware.

Sources, per calendar year
--------------------------
1. A calendar file (``WEAPP_LAUNCH_CALENDAR_FILE``), if it names the year: the year is
   *known*. The file wins over the built-in data for a year both have (so an operator
   can correct or pre-empt it; an upgrade of ``chinesecalendar`` never breaks the file).
2. ``chinesecalendar`` (``import chinese_calendar``), which publishes 2004–2026 with the
   adjusted workdays (调休): the year is *known*.
3. Otherwise the year is *guessed*: Saturdays, Sundays and the statutory holidays that
   ``holidays.CN`` computes (lunar festivals included, with its "observed" days) are off,
   and there are NO adjusted workdays. Every answer that examined such a day is marked
   ``provisional=True`` and must be shown as such.

A day is a working day iff it is an adjusted workday, or it is Monday–Friday and not a
holiday (the same rule as ``chinese_calendar.is_workday``).

"Examined" days: ``add_workdays(start, n)`` examines ``(start, result]`` for n > 0 and
``[result, start)`` for n < 0 (n = 0 examines nothing: never provisional);
``workdays_between(a, b)`` examines ``(min, max]``; ``is_workday(d)`` examines ``d``.

Calendar file format (YAML; see ``data/calendar-example.yaml``)
---------------------------------------------------------------
::

    2027:                                     # year: an unquoted integer, 1900–2999
      holidays: ["2027-01-01", "2027-02-05..2027-02-13"]  # required, non-empty
      workdays: ["2027-02-14"]                # optional: adjusted working weekend days (调休)

Entries are "YYYY-MM-DD" (quoted or not) or an inclusive range "A..B" with A <= B.
Rules (each broken rule raises :class:`CalendarFileError` naming the file, the year, the
key and the entry, in Chinese and English): the top level is a non-empty mapping; no key
appears twice; year keys are integers; each year is a mapping with only ``holidays`` and
``workdays``; both are lists; every date is a valid date of that year; ranges are
ordered; a workday is a Saturday or Sunday; no date is both a holiday and a workday.

Deadlines
---------
``due_after_workdays`` ends at the end of the nth working day after the start's local
date (00:00 of the following calendar day). ``due_after_hours`` / ``due_after_days`` are
elapsed clock time (computed in UTC, shown in the calendar's zone; Asia/Shanghai has had
no DST since 1991). ``workday_fraction_point`` is defined on that method.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
import holidays as holidays_lib
import yaml

__all__ = [
    "EXAMPLE_CALENDAR_FILE",
    "CalendarFileError",
    "CountAnswer",
    "DateAnswer",
    "DayAnswer",
    "DeadlineAnswer",
    "WorkCalendar",
    "YearSchedule",
    "load_calendar_file",
    "parse_calendar_data",
]

EXAMPLE_CALENDAR_FILE = Path(__file__).parent / "data" / "calendar-example.yaml"

MIN_FILE_YEAR = 1900
MAX_FILE_YEAR = 2999

_UTC = timezone.utc
_ONE_DAY = timedelta(days=1)
_MICRO = timedelta(microseconds=1)
_DAY_US = 86_400_000_000
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class DateAnswer:
    value: date
    provisional: bool


@dataclass(frozen=True, slots=True)
class CountAnswer:
    value: int
    provisional: bool


@dataclass(frozen=True, slots=True)
class DayAnswer:
    """Answer of :meth:`WorkCalendar.is_workday`. Use ``.value``; it has no truth value."""

    value: bool
    provisional: bool

    def __bool__(self) -> bool:  # `if cal.is_workday(d):` would always be true: refuse it
        raise TypeError("DayAnswer has no truth value: use .value (and look at .provisional)")


@dataclass(frozen=True, slots=True)
class DeadlineAnswer:
    at: datetime  # tz-aware, in the calendar's zone (Asia/Shanghai by default)
    provisional: bool


# --------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class YearSchedule:
    """Published schedule of one year: holidays (days off) and adjusted workdays (调休)."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "workdays", frozenset(self.workdays))


class CalendarFileError(ValueError):
    """A calendar file (or ``extra_years`` mapping) breaks a rule.

    Attributes: ``path`` (file or a label), ``year``, ``key``, ``entry``, ``rule`` (a short
    English code such as ``"date-outside-year"``).
    """

    def __init__(
        self,
        path: Path | str | None,
        rule: str,
        zh: str,
        en: str,
        *,
        year: Any = None,
        key: str | None = None,
        index: int | None = None,
        entry: Any = None,
    ) -> None:
        self.path = path
        self.rule = rule
        self.year = year
        self.key = key
        self.index = index
        self.entry = entry
        where_zh, where_en = [], []
        if year is not None:
            where_zh.append(f"{year} 年")
            where_en.append(f"year {year}")
        if key is not None:
            if index is not None:
                where_zh.append(f"{key} 第 {index + 1} 项 {entry!r}")
                where_en.append(f"{key} entry #{index + 1} {entry!r}")
            else:
                where_zh.append(f"{key}")
                where_en.append(f"{key}")
        src_zh = f"日历文件 {path}" if path is not None else "日历数据（extra_years）"
        src_en = f"calendar file {path}" if path is not None else "calendar data (extra_years)"
        loc_zh = "，".join(where_zh)
        loc_en = ", ".join(where_en)
        msg_zh = f"{src_zh}" + (f"，{loc_zh}" if loc_zh else "") + f"：{zh}"
        msg_en = f"{src_en}" + (f", {loc_en}" if loc_en else "") + f": {en} [{rule}]"
        super().__init__(f"{msg_zh} / {msg_en}")


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int) -> None:
        self.key, self.line = key, line


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key appearing twice in one mapping."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            if key in seen:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        except TypeError:  # unhashable key: let the base constructor complain
            pass
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse_day(raw: Any, year: int, src: Any, key: str, index: int, entry: Any) -> date:
    if isinstance(raw, datetime):
        raise CalendarFileError(
            src, "bad-date", "应为日期 YYYY-MM-DD，不能带时间", "expected a date YYYY-MM-DD, not a timestamp",
            year=year, key=key, index=index, entry=entry,
        )
    if isinstance(raw, date):
        d = raw
    elif isinstance(raw, str):
        d = None
        if _ISO_DATE.fullmatch(raw.strip()):
            try:
                d = date.fromisoformat(raw.strip())
            except ValueError:
                pass
        if d is None:
            raise CalendarFileError(
                src, "bad-date", f"{raw!r} 不是有效日期（格式 YYYY-MM-DD）",
                f"{raw!r} is not a valid date (format YYYY-MM-DD)",
                year=year, key=key, index=index, entry=entry,
            )
    else:
        raise CalendarFileError(
            src, "bad-date", "应为日期字符串 YYYY-MM-DD 或区间 A..B", "expected a date YYYY-MM-DD or a range A..B",
            year=year, key=key, index=index, entry=entry,
        )
    if d.year != year:
        raise CalendarFileError(
            src, "date-outside-year", f"日期 {d.isoformat()} 不属于 {year} 年",
            f"date {d.isoformat()} does not belong to year {year}",
            year=year, key=key, index=index, entry=entry,
        )
    return d


def _parse_entries(value: Any, year: int, src: Any, key: str) -> dict[date, int]:
    """Expand a list of dates / ranges into {date: index of the entry that named it}."""
    if not isinstance(value, list):
        raise CalendarFileError(
            src, "not-a-list", f"{key} 应为列表", f"{key} must be a list", year=year, key=key
        )
    out: dict[date, int] = {}
    for i, entry in enumerate(value):
        if isinstance(entry, str) and ".." in entry:
            left, _, right = entry.partition("..")
            a = _parse_day(left, year, src, key, i, entry)
            b = _parse_day(right, year, src, key, i, entry)
            if b < a:
                raise CalendarFileError(
                    src, "range-reversed", f"区间起点 {a} 晚于终点 {b}", f"range start {a} is after its end {b}",
                    year=year, key=key, index=i, entry=entry,
                )
            d = a
            while d <= b:
                out.setdefault(d, i)
                d += _ONE_DAY
        else:
            out.setdefault(_parse_day(entry, year, src, key, i, entry), i)
    return out


def _check_year_key(year: Any, src: Any) -> int:
    if isinstance(year, bool) or not isinstance(year, int):
        raise CalendarFileError(
            src, "year-not-int", f"年份键 {year!r} 应为整数（不要加引号）",
            f"year key {year!r} must be an integer (unquoted)", year=year,
        )
    if not MIN_FILE_YEAR <= year <= MAX_FILE_YEAR:
        raise CalendarFileError(
            src, "year-out-of-range", f"年份应在 {MIN_FILE_YEAR}–{MAX_FILE_YEAR} 之间",
            f"year must be between {MIN_FILE_YEAR} and {MAX_FILE_YEAR}", year=year,
        )
    return year


def _check_schedule(year: int, holidays_: Mapping[date, int], workdays_: Mapping[date, int], src: Any) -> None:
    for d, i in sorted(workdays_.items()):
        if d.year != year:
            raise CalendarFileError(
                src, "date-outside-year", f"日期 {d.isoformat()} 不属于 {year} 年",
                f"date {d.isoformat()} does not belong to year {year}", year=year, key="workdays",
                index=i, entry=d.isoformat(),
            )
        if d.weekday() < 5:
            raise CalendarFileError(
                src, "workday-not-weekend", f"调休上班日 {d.isoformat()} 不是周六或周日",
                f"adjusted workday {d.isoformat()} is not a Saturday or Sunday",
                year=year, key="workdays", index=i, entry=d.isoformat(),
            )
        if d in holidays_:
            raise CalendarFileError(
                src, "holiday-and-workday",
                f"{d.isoformat()} 同时列为假日（holidays 第 {holidays_[d] + 1} 项）和上班日",
                f"{d.isoformat()} is both a holiday (holidays entry #{holidays_[d] + 1}) and a workday",
                year=year, key="workdays", index=i, entry=d.isoformat(),
            )
    for d, i in sorted(holidays_.items()):
        if d.year != year:
            raise CalendarFileError(
                src, "date-outside-year", f"日期 {d.isoformat()} 不属于 {year} 年",
                f"date {d.isoformat()} does not belong to year {year}", year=year, key="holidays",
                index=i, entry=d.isoformat(),
            )


def parse_calendar_data(data: Any, path: Path | str | None = None) -> dict[int, YearSchedule]:
    """Validate the already-loaded YAML document of a calendar file (rules: module docstring)."""
    src = path
    if not isinstance(data, dict) or not data:
        raise CalendarFileError(
            src, "not-a-mapping", "文件应为非空映射：年份 → {holidays, workdays}",
            "the file must be a non-empty mapping: year -> {holidays, workdays}",
        )
    out: dict[int, YearSchedule] = {}
    for raw_year, body in data.items():
        year = _check_year_key(raw_year, src)
        if not isinstance(body, dict):
            raise CalendarFileError(
                src, "year-not-a-mapping", "年份下应为映射，含 holidays 与可选的 workdays",
                "each year must be a mapping with holidays and optional workdays", year=year,
            )
        for k in body:
            if k not in ("holidays", "workdays"):
                raise CalendarFileError(
                    src, "unknown-key", f"未知的键 {k!r}（只允许 holidays、workdays）",
                    f"unknown key {k!r} (only holidays and workdays are allowed)", year=year, key=str(k),
                )
        if not body.get("holidays"):
            raise CalendarFileError(
                src, "missing-holidays", "缺少 holidays，或列表为空", "holidays is missing or empty",
                year=year, key="holidays",
            )
        hol = _parse_entries(body["holidays"], year, src, "holidays")
        wd = _parse_entries(body.get("workdays") or [], year, src, "workdays")
        _check_schedule(year, hol, wd, src)
        out[year] = YearSchedule(frozenset(hol), frozenset(wd))
    return out


def load_calendar_file(path: Path | str) -> dict[int, YearSchedule]:
    """Read and validate a calendar YAML file; every problem is a :class:`CalendarFileError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarFileError(p, "unreadable", f"无法读取文件（{exc}）", f"cannot read the file ({exc})") from exc
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except _DuplicateKey as exc:
        raise CalendarFileError(
            p, "duplicate-key", f"第 {exc.line} 行：键 {exc.key!r} 重复出现",
            f"line {exc.line}: key {exc.key!r} appears twice",
            year=exc.key if isinstance(exc.key, int) and not isinstance(exc.key, bool) else None,
        ) from None
    except yaml.YAMLError as exc:
        raise CalendarFileError(p, "yaml-syntax", f"YAML 语法错误：{exc}", f"YAML syntax error: {exc}") from exc
    return parse_calendar_data(data, p)


# --------------------------------------------------------------------------- per-year data


@dataclass(frozen=True, slots=True)
class _Year:
    ords: tuple[int, ...]  # sorted ordinals of the year's working days
    days: frozenset[int]  # same, for membership
    known: bool


def _build_year(year: int, is_off: Any, extra_workdays: Iterable[date], known: bool) -> _Year:
    first = date(year, 1, 1).toordinal()
    last = date(year, 12, 31).toordinal()
    extra = {d.toordinal() for d in extra_workdays}
    ords = []
    for o in range(first, last + 1):
        if o in extra:
            ords.append(o)
            continue
        # date.weekday() == (ordinal + 6) % 7
        if (o + 6) % 7 < 5 and not is_off(o):
            ords.append(o)
    t = tuple(ords)
    return _Year(t, frozenset(t), known)


@lru_cache(maxsize=None)
def _builtin_known(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


@lru_cache(maxsize=None)
def _builtin_year(year: int) -> _Year:
    # Same rule as chinese_calendar.is_workday, read from its tables (its per-call range
    # check is slow); a test cross-checks every day of 2004–2026 against is_workday.
    hol = {d.toordinal() for d in chinese_calendar.holidays if d.year == year}
    wd = [d for d in chinese_calendar.workdays if d.year == year]
    return _build_year(year, hol.__contains__, wd, True)


@lru_cache(maxsize=None)
def _guessed_year(year: int) -> _Year:
    hol = {d.toordinal() for d in holidays_lib.CN(years=year) if d.year == year}
    return _build_year(year, hol.__contains__, (), False)


def _schedule_year(year: int, s: YearSchedule) -> _Year:
    hol = {d.toordinal() for d in s.holidays}
    return _build_year(year, hol.__contains__, s.workdays, True)


@lru_cache(maxsize=None)
def _uniform_year(tz_name: str, year: int) -> bool:
    """True if every local day of the year (and its last day's end) is exactly 24 hours."""
    if not 1 <= year < 9999:
        return False
    tz = ZoneInfo(tz_name)
    ref = datetime(year, 1, 1, tzinfo=tz).utcoffset()
    d = date(year, 1, 1)
    while d <= date(year + 1, 1, 1):
        if datetime.combine(d, time(0), tzinfo=tz).utcoffset() != ref:
            return False
        d += _ONE_DAY
    return True


# --------------------------------------------------------------------------- calendar


def _check_date(name: str, d: Any) -> None:
    if isinstance(d, datetime) or not isinstance(d, date):
        raise TypeError(f"{name} must be a datetime.date (not {type(d).__name__}); for a moment use due_after_*")


def _check_int(name: str, n: Any) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name} must be an int, got {type(n).__name__}")


def _check_aware(name: str, dt: Any) -> None:
    if not isinstance(dt, datetime):
        raise TypeError(f"{name} must be a timezone-aware datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} 必须带时区（收到无时区的 datetime {dt.isoformat()}） / "
                         f"{name} must be timezone-aware (got naive datetime {dt.isoformat()})")


def _check_finite(name: str, x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return float(x)


class WorkCalendar:
    """Working days of mainland China; see the module docstring for sources and rules."""

    def __init__(self, extra_years: Mapping[int, YearSchedule] | None = None, tz: str = "Asia/Shanghai") -> None:
        self.tz_name = tz
        self._tz = ZoneInfo(tz)
        self._extra: dict[int, YearSchedule] = {}
        for year, sched in (extra_years or {}).items():
            year = _check_year_key(year, None)
            if not isinstance(sched, YearSchedule):
                raise TypeError(f"extra_years[{year}] must be a YearSchedule, got {type(sched).__name__}")
            _check_schedule(
                year,
                {d: i for i, d in enumerate(sorted(sched.holidays))},
                {d: i for i, d in enumerate(sorted(sched.workdays))},
                None,
            )
            self._extra[year] = sched
        self._years: dict[int, _Year] = {}

    @classmethod
    def from_file(cls, path: Path | str | None, tz: str = "Asia/Shanghai") -> WorkCalendar:
        """``None`` -> built-in data only; otherwise add (or override) the years the file names."""
        return cls(load_calendar_file(path) if path is not None else None, tz=tz)

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @property
    def file_years(self) -> tuple[int, ...]:
        """Years supplied by the calendar file / ``extra_years``."""
        return tuple(sorted(self._extra))

    # -- per-year cache ------------------------------------------------------------

    def _year(self, year: int) -> _Year:
        try:
            return self._years[year]
        except KeyError:
            pass
        if not 1 <= year <= 9999:
            raise OverflowError(f"year {year} is outside the supported calendar range")
        if year in self._extra:
            y = _schedule_year(year, self._extra[year])
        elif _builtin_known(year):
            y = _builtin_year(year)
        else:
            y = _guessed_year(year)
        self._years[year] = y
        return y

    # -- days ----------------------------------------------------------------------

    def is_known(self, d: date) -> bool:
        """True if published data (file or chinesecalendar) exists for d's year."""
        _check_date("d", d)
        return d.year in self._extra or _builtin_known(d.year)

    def is_workday(self, d: date) -> DayAnswer:
        _check_date("d", d)
        y = self._year(d.year)
        return DayAnswer(d.toordinal() in y.days, not y.known)

    def add_workdays(self, start: date, n: int) -> DateAnswer:
        """The date n working days after start (start not counted); n=0 -> start; n<0 backwards.

        n < 0 returns the |n|th working day strictly before start.
        """
        _check_date("start", start)
        _check_int("n", n)
        if n == 0:
            return DateAnswer(start, False)
        s = start.toordinal()
        o, prov = self._forward(s, n) if n > 0 else self._backward(s, -n)
        return DateAnswer(date.fromordinal(o), prov)

    def _forward(self, s: int, n: int) -> tuple[int, bool]:
        year = date.fromordinal(s + 1).year  # first examined day
        y = self._year(year)
        ords = y.ords
        i = bisect_right(ords, s)
        prov = False
        while True:
            if not y.known:
                prov = True
            avail = len(ords) - i
            if n <= avail:
                return ords[i + n - 1], prov
            n -= avail
            year += 1
            y = self._year(year)
            ords = y.ords
            i = 0

    def _backward(self, s: int, n: int) -> tuple[int, bool]:
        year = date.fromordinal(s - 1).year  # first examined day
        y = self._year(year)
        ords = y.ords
        i = bisect_left(ords, s)  # working days of this year before s
        prov = False
        while True:
            if not y.known:
                prov = True
            if n <= i:
                return ords[i - n], prov
            n -= i
            year -= 1
            y = self._year(year)
            ords = y.ords
            i = len(ords)

    def workdays_between(self, a: date, b: date) -> CountAnswer:
        """Working days in (a, b]; negative (-(working days in (b, a])) if b < a."""
        _check_date("a", a)
        _check_date("b", b)
        ao, bo = a.toordinal(), b.toordinal()
        if ao == bo:
            return CountAnswer(0, False)
        sign = 1
        if bo < ao:
            ao, bo, sign = bo, ao, -1
        count = 0
        prov = False
        for year in range(date.fromordinal(ao + 1).year, date.fromordinal(bo).year + 1):
            y = self._year(year)
            if not y.known:
                prov = True
            count += bisect_right(y.ords, bo) - bisect_right(y.ords, ao)
        return CountAnswer(sign * count, prov)

    def _workdays_after(self, s: int) -> Iterator[int]:
        """Working-day ordinals strictly after ordinal s, in order, forever."""
        year = date.fromordinal(s + 1).year
        y = self._year(year)
        i = bisect_right(y.ords, s)
        while True:
            yield from y.ords[i:]
            year += 1
            y = self._year(year)
            i = 0

    # -- moments -------------------------------------------------------------------

    def _uniform_days(self, first_year: int, last_year: int) -> bool:
        return all(_uniform_year(self.tz_name, y) for y in range(first_year, last_year + 1))

    def _day_start(self, d: date) -> datetime:
        return datetime.combine(d, time(0), tzinfo=self._tz)

    def due_after_workdays(self, start: datetime, n: int) -> DeadlineAnswer:
        """End of the nth working day after start's local date: 00:00 of the next calendar day."""
        _check_aware("start", start)
        _check_int("n", n)
        d = self.add_workdays(start.astimezone(self._tz).date(), n)
        return DeadlineAnswer(self._day_start(d.value + _ONE_DAY), d.provisional)

    def due_after_hours(self, start: datetime, hours: float) -> DeadlineAnswer:
        """start + elapsed clock hours (e.g. the 24-hour SMS window); never provisional."""
        _check_aware("start", start)
        h = _check_finite("hours", hours)
        return DeadlineAnswer((start.astimezone(_UTC) + timedelta(hours=h)).astimezone(self._tz), False)

    def due_after_days(self, start: datetime, days: float) -> DeadlineAnswer:
        """start + elapsed calendar days of 24 hours (e.g. WeChat's 3-day verify task)."""
        _check_aware("start", start)
        x = _check_finite("days", days)
        return DeadlineAnswer((start.astimezone(_UTC) + timedelta(days=x)).astimezone(self._tz), False)

    def workday_fraction_point(self, start: datetime, n: int, fraction: float) -> DeadlineAnswer:
        """The moment ``fraction`` of the working time of the window has elapsed.

        Window: ``[start, due_after_workdays(start, n).at)``. Working time: the parts of the
        window lying on working days, counted as whole local calendar days (00:00–24:00);
        so it is the rest of start's own day if that day is a working day, plus the n
        working days after it. The answer is the earliest moment t >= start at which the
        working time in ``[start, t]`` reaches ``fraction`` x total (exact, microseconds).
        Hence fraction 0 -> start, 1 -> the deadline, and a point inside the window never
        falls on a non-working day (a point that lands exactly on the end of a working
        day is that day's 24:00). If the window holds no working time (n = 0 on a day
        off), fraction 0 -> start, anything else -> the deadline. Provisional if the
        deadline is, or if start's own day lies in an unknown year.
        """
        _check_aware("start", start)
        _check_int("n", n)
        if n < 0:
            raise ValueError("n must be >= 0 for a fraction point")
        f = _check_finite("fraction", fraction)
        if not 0.0 <= f <= 1.0:
            raise ValueError(f"fraction must be within [0, 1], got {fraction!r}")
        deadline = self.due_after_workdays(start, n)
        local = start.astimezone(self._tz)
        d0 = local.date()
        first = self.is_workday(d0)
        prov = deadline.provisional or first.provisional
        if f == 0.0:
            return DeadlineAnswer(local, prov)

        first_len = 0
        if first.value:
            first_len = (self._day_start(d0 + _ONE_DAY).astimezone(_UTC) - start.astimezone(_UTC)) // _MICRO
        if self._uniform_days(d0.year, deadline.at.year):
            # fast path: every local day is 24 h long in the years the window touches
            total = first_len + n * _DAY_US
            if total == 0:
                return DeadlineAnswer(deadline.at, prov)
            target = round(f * total)
            if target <= first_len:
                return DeadlineAnswer((start.astimezone(_UTC) + target * _MICRO).astimezone(self._tz), prov)
            rest = target - first_len
            k = -(-rest // _DAY_US)  # the kth working day after d0 holds the point, 1 <= k <= n
            day = self.add_workdays(d0, k).value
            offset = rest - (k - 1) * _DAY_US
            return DeadlineAnswer(
                (self._day_start(day).astimezone(_UTC) + offset * _MICRO).astimezone(self._tz), prov
            )

        segments: list[tuple[datetime, int]] = []  # (UTC start of segment, length in µs)
        if first.value:
            seg_start = start.astimezone(_UTC)
            seg_end = self._day_start(d0 + _ONE_DAY).astimezone(_UTC)
            segments.append((seg_start, (seg_end - seg_start) // _MICRO))
        if n:
            for k, o in enumerate(self._workdays_after(d0.toordinal())):
                d = date.fromordinal(o)
                a = self._day_start(d).astimezone(_UTC)
                b = self._day_start(d + _ONE_DAY).astimezone(_UTC)
                segments.append((a, (b - a) // _MICRO))
                if k + 1 == n:
                    break
        total = sum(length for _, length in segments)
        if total == 0:
            return DeadlineAnswer(deadline.at, prov)
        target = round(f * total)
        for seg_start, length in segments:
            if target <= length:
                return DeadlineAnswer((seg_start + target * _MICRO).astimezone(self._tz), prov)
            target -= length
        return DeadlineAnswer(deadline.at, prov)  # unreachable unless rounding overshoots
