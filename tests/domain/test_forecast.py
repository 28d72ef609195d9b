"""The go-live forecast against hand-computed cases (launch/domain/forecast.py).

Positions: a date d is working-day position pos(d); a duration of x working days from d
ends on the working day ceil(pos(d) + x), i.e. calendar.add_workdays(d, ceil(x)).
Sample quantiles are nearest-rank; with 10,000 samples every case below keeps its exact
quantile well away (≥ 0.07 working days, ≥ 3 % probability) from a day boundary.
"""

from __future__ import annotations

from datetime import date

import pytest

from launch.domain.calendar import WorkCalendar
from launch.domain.catalogue import Catalogue, Phase, default_catalogue
from launch.domain.forecast import (
    Forecast,
    ForecastConfigError,
    GateActual,
    LaunchHistory,
    PhaseActual,
    default_forecast_config,
    forecast,
    load_forecast_config,
    parse_forecast_config,
    risk_level,
)

CAL = WorkCalendar()
START = date(2026, 6, 1)  # a Monday; no holiday in June 2026 after the Dragon Boat Festival (06-19)


def add(d: date, n: int) -> date:
    return CAL.add_workdays(d, n).value


def catalogue(*phases: tuple[str, tuple[str, ...]]) -> Catalogue:
    return Catalogue(
        phases={p: Phase(id=p, name_zh=p, name_en=p, owner="x", estimate_wd=(1, 3), after=after) for p, after in phases},
        gates={},
        actors={},
    )


def config(phases: dict, **extra):
    return parse_forecast_config({"phases": phases, **extra}, "test")


def history(start: date = START, **kw) -> LaunchHistory:
    return LaunchHistory("l-test", start, kw.pop("path", "standalone"), **kw)


def test_one_step():
    cat = catalogue(("only", ()))
    cfg = config({"only": [{"stage": "s", "uniform": [0.5, 4.5]}]})
    fc = forecast(history(), cat, CAL, cfg, as_of=START)
    # median 2.5 wd -> 3rd working day; P90 4.1 wd -> 5th working day
    assert fc.p50 == add(START, 3) == date(2026, 6, 4)
    assert fc.p90 == add(START, 5) == date(2026, 6, 8)
    (step,) = fc.steps
    assert (step.start_p50, step.finish_p50, step.finish_p90, step.critical) == (START, fc.p50, fc.p90, True)
    assert fc.samples == 10_000 and fc.seed == 0 and not fc.provisional


def test_two_parallel_branches_and_a_join():
    cat = catalogue(("a", ()), ("b", ()), ("join", ("a", "b")))
    cfg = config({
        "a": [{"stage": "s", "uniform": [0, 9]}],
        "b": [{"stage": "s", "uniform": [0, 9]}],
        "join": [{"stage": "s", "fixed": 1}],
    })
    fc = forecast(history(), cat, CAL, cfg, as_of=START)
    # one branch alone: median 4.5 -> 5th working day, P90 8.1 -> 9th; the later of two:
    # P(max <= x) = (x/9)^2, median 9·√0.5 = 6.36 -> 7th, P90 9·√0.9 = 8.54 -> 9th;
    # then one more working day
    a, b, join = fc.steps
    assert a.finish_p50 == add(START, 5) and a.finish_p90 == add(START, 9)
    assert join.start_p50 == add(START, 7)
    assert fc.p50 == add(START, 8)
    assert fc.p90 == add(START, 10)


def test_the_critical_path_follows_the_longer_branch():
    cat = catalogue(("a", ()), ("b", ()), ("join", ("a", "b")))
    cfg = config({
        "a": [{"stage": "s", "uniform": [0, 2]}],
        "b": [{"stage": "s", "uniform": [5, 10]}],
        "join": [{"stage": "s", "fixed": 0}],
    })
    fc = forecast(history(), cat, CAL, cfg, as_of=START)
    assert {s.phase: s.critical for s in fc.steps} == {"a": False, "b": True, "join": True}


def test_a_holiday_inside_the_window():
    # National Day 2026: 10-01..10-08 off, Saturday 10-10 an adjusted workday (调休)
    cat = catalogue(("only", ()))
    cfg = config({"only": [{"stage": "s", "fixed": 3}]})
    start = date(2026, 9, 30)
    fc = forecast(history(start), cat, CAL, cfg, as_of=start)
    assert fc.p50 == fc.p90 == add(start, 3) == date(2026, 10, 10)


def test_a_rejection_loop():
    # 2 wd; rejected with p = 0.4, then 1 wd of rework and the stage again:
    # P(no rejection) = 0.6 -> P50 = 2 wd; P(≤ 1) = 0.84 < 0.9 ≤ P(≤ 2) = 0.936 -> P90 = 2 + 2·3 = 8 wd
    cat = catalogue(("only", ()))
    cfg = config({"only": [{"stage": "s", "fixed": 2, "loops": [{"p": 0.4, "rework": {"fixed": 1}}]}]})
    fc = forecast(history(), cat, CAL, cfg, as_of=START)
    assert fc.p50 == add(START, 2)
    assert fc.p90 == add(START, 8)


def test_a_loop_back_to_an_earlier_stage():
    # s1 1 wd, s2 1 wd rejected with p = 0.4 -> rework 0 and back to s1: each loop costs 2 wd
    cat = catalogue(("only", ()))
    cfg = config({"only": [
        {"stage": "s1", "fixed": 1},
        {"stage": "s2", "fixed": 1, "loops": [{"p": 0.4, "back_to": "s1"}]},
    ]})
    fc = forecast(history(), cat, CAL, cfg, as_of=START)
    assert (fc.p50, fc.p90) == (add(START, 2), add(START, 6))


def test_deterministic_under_a_seed():
    cat, cfg = default_catalogue(), default_forecast_config()
    h = history()
    one = forecast(h, cat, CAL, cfg, as_of=START, samples=3000, seed=7)
    two = forecast(h, cat, CAL, cfg, as_of=START, samples=3000, seed=7)
    assert one == two
    other = forecast(h, cat, CAL, cfg, as_of=START, samples=3000, seed=8)
    assert abs(CAL.workdays_between(one.p50, other.p50).value) <= 1


def test_running_step_uses_its_elapsed_time():
    # uniform(0, 9) started 6 working days ago: it takes uniform(6, 9) from its start,
    # median 7.5 -> 8th working day, P90 8.7 -> 9th (fresh: median 4.5 -> 5th)
    cat = catalogue(("only", ()))
    cfg = config({"only": [{"stage": "s", "gates": ["g"], "uniform": [0, 9]}]})
    as_of = add(START, 6)
    h = history(phases={"only": PhaseActual(START)}, gates={"g": GateActual(1, START, START)})
    fc = forecast(h, cat, CAL, cfg, as_of=as_of)
    assert fc.p50 == add(START, 8) and fc.p90 == add(START, 9)
    assert fc.steps[0].actual_start == START
    fresh = forecast(history(), cat, CAL, cfg, as_of=START)
    assert fresh.p50 == add(START, 5)


def test_a_step_past_its_maximum_ends_after_as_of():
    cat = catalogue(("only", ()))
    cfg = config({"only": [{"stage": "s", "gates": ["g"], "uniform": [1, 2]}]}, overdue_residual={"uniform": [0.2, 1.6]})
    as_of = add(START, 5)
    h = history(phases={"only": PhaseActual(START)}, gates={"g": GateActual(1, START, START)})
    fc = forecast(h, cat, CAL, cfg, as_of=as_of)
    assert fc.p50 == add(as_of, 1) and fc.p90 == add(as_of, 2)


def _full_history(as_of_stage: str) -> tuple[LaunchHistory, date]:
    """The packaged process, a standalone enterprise launch started 2026-06-01: at start,
    at the bureau (just opened), and with the filing done and the code review running."""
    d = lambda n: add(START, n)  # noqa: E731
    if as_of_stage == "start":
        return history(subject_type="enterprise"), START
    if as_of_stage == "review":
        phases = {
            "registration": PhaseActual(START, d(2)),
            "filing": PhaseActual(d(2), d(10)),
            "design": PhaseActual(d(2), d(4)),
            "implementation": PhaseActual(d(4), d(7)),
            "content": PhaseActual(d(7), d(9)),
            "review": PhaseActual(d(9)),
        }
        gates = {"trial-acceptance": GateActual(1, None, d(9), d(10), True, "accepted"),
                 "review-submission": GateActual(1, None, d(10), d(10), True, "submitted"),
                 "code-review": GateActual(1, d(10), d(10))}
        return history(subject_type="enterprise", phases=phases, gates=gates), d(11)
    phases = {
        "registration": PhaseActual(START, d(2)),
        "filing": PhaseActual(d(2)),
        "design": PhaseActual(d(2), d(4)),
        "implementation": PhaseActual(d(4), d(7)),
        "content": PhaseActual(d(7), d(9)),
        "review": PhaseActual(d(9), d(12)),
    }
    gates = {
        "filing-materials": GateActual(1, None, d(2), d(3), True, "confirmed"),
        "first-review": GateActual(1, None, d(5), d(6), True, "passed"),
        "sms-verification": GateActual(1, None, d(6), d(7), True, "verified"),
        "bureau-review": GateActual(1, d(7), d(7)),
    }
    return history(subject_type="enterprise", phases=phases, gates=gates), d(7)


def test_actual_dates_narrow_the_forecast():
    cat, cfg = default_catalogue(), default_forecast_config()
    h0, a0 = _full_history("start")
    h1, a1 = _full_history("bureau")
    h2, a2 = _full_history("review")
    f0 = forecast(h0, cat, CAL, cfg, as_of=a0, samples=4000)
    f1 = forecast(h1, cat, CAL, cfg, as_of=a1, samples=4000)
    f2 = forecast(h2, cat, CAL, cfg, as_of=a2, samples=4000)
    spread = lambda f: CAL.workdays_between(f.p50, f.p90).value  # noqa: E731
    assert f1.p50 < f0.p50  # the filing went fast so far
    assert spread(f2) < spread(f0) and spread(f2) < spread(f1)
    assert spread(f2) <= 5  # a failed code review (p 0.2) would cost a fix and another round
    assert f1.p50 >= a1 and f2.p50 > a2
    steps = {s.phase: s for s in f1.steps}
    assert steps["design"].finish_p50 == steps["design"].finish_p90 == steps["design"].actual_finish == add(START, 4)
    assert steps["filing"].actual_start == add(START, 2) and steps["filing"].actual_finish is None
    assert steps["filing"].critical and steps["release"].critical and not steps["design"].critical
    # the bureau alone is left of the filing: its finish is at least a working day after as_of
    assert steps["filing"].finish_p50 > a1


def test_a_released_launch_is_its_release_date():
    cat, cfg = default_catalogue(), default_forecast_config()
    gone = add(START, 15)
    h = history(subject_type="enterprise", finished=gone)
    fc = forecast(h, cat, CAL, cfg, as_of=add(START, 20), samples=200)
    assert fc.p50 == fc.p90 == gone


def test_provisional_when_the_forecast_reaches_an_unpublished_year():
    cat, cfg = default_catalogue(), default_forecast_config()
    assert not CAL.is_known(date(2027, 1, 4))
    fc = forecast(history(date(2026, 12, 10)), cat, CAL, cfg, as_of=date(2026, 12, 10), samples=500)
    assert fc.p90.year == 2027 and fc.provisional
    early = forecast(history(), cat, CAL, cfg, as_of=START, samples=500)
    assert not early.provisional


def test_the_packaged_forecast_covers_the_seed_ranges():
    """At launch start: P50 inside plan.py's best/worst window; P90 near its worst (the
    bureau's long reviews and the rejection loops may reach a little beyond the sum of the
    seeds' maxima, which assumes no rework)."""
    from launch.domain.plan import make_plan

    cat, cfg = default_catalogue(), default_forecast_config()
    for path in ("standalone", "reuse_official_account"):
        plan = make_plan(cat, CAL, START, path)
        fc = forecast(history(path=path, subject_type="enterprise"), cat, CAL, cfg, as_of=START, samples=4000)
        assert plan.go_live_earliest < fc.p50 < fc.p90 <= add(plan.go_live_latest, 2)
        assert CAL.workdays_between(fc.p90, plan.go_live_latest).value >= -2


def test_an_individual_skips_the_verification_stage():
    cat = default_catalogue()
    cfg = config({"registration": {"paths": {"standalone": [
        {"stage": "account", "gates": ["email-activation"], "fixed": 1},
        {"stage": "verification", "gates": ["wechat-verification"], "fixed": 5},
    ]}}})
    ent = forecast(history(subject_type="enterprise"), cat, CAL, cfg, as_of=START, samples=200)
    ind = forecast(history(subject_type="individual"), cat, CAL, cfg, as_of=START, samples=200)
    assert ent.steps[0].finish_p50 == add(START, 6) and ind.steps[0].finish_p50 == add(START, 1)


def test_risk_levels():
    fc = Forecast("l", START, date(2026, 7, 1), date(2026, 7, 10), 1, 0, (), False)
    assert risk_level(fc, None) is None
    assert risk_level(fc, date(2026, 7, 10)) == "ok"
    assert risk_level(fc, date(2026, 7, 1)) == "at-risk"
    assert risk_level(fc, date(2026, 6, 30)) == "late"


@pytest.mark.parametrize("phases,key", [
    ({"x": [{"stage": "s", "uniform": [3, 1]}]}, "phases.x[0].uniform"),
    ({"x": [{"stage": "s", "fixed": 1, "loops": [{"p": 0.6}, {"p": 0.5}]}]}, "phases.x[0].loops"),
    ({"x": [{"stage": "s", "fixed": 1, "loops": [{"p": 0.1, "back_to": "later"}]}, {"stage": "later", "fixed": 1}]},
     "phases.x[0].loops[0].back_to"),
    ({"x": [{"stage": "s", "fixed": 1, "uniform": [1, 2]}]}, "phases.x[0]"),
    ({"x": [{"stage": "s", "lognormal": {"median": 5, "p90": 3}}]}, "phases.x[0].lognormal"),
])
def test_config_errors_name_the_key(phases, key):
    with pytest.raises(ForecastConfigError) as err:
        config(phases)
    assert err.value.key == key


def test_override_file_replaces_a_phase(tmp_path):
    f = tmp_path / "forecast.yaml"
    f.write_text("max_loops: 2\nphases:\n  content:\n    - {stage: fill, gates: [content], fixed: 4}\n", encoding="utf-8")
    cfg = load_forecast_config(f)
    assert cfg.max_loops == 2
    (stage,) = cfg.phases["content"]["*"]
    assert stage.duration.params == (4.0,)
    assert "bureau" in [s.id for s in cfg.phases["filing"]["*"]]
