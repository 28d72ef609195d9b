"""Calibration of the go-live forecast (issue 13): a synthetic history of 400 launches from
the catalogue with noise (each launch's own pace, noise per attempt, long bureau reviews,
rejections with rework), replayed at the launch's start and at the start of each phase.
The README's "Forecast" section quotes this table (python -m launch.domain.forecast_backtest
--launches 400)."""

from __future__ import annotations

from launch.domain.calendar import WorkCalendar
from launch.domain.catalogue import default_catalogue
from launch.domain.forecast import default_forecast_config
from launch.domain.forecast_backtest import calibrate, generate


def test_the_synthetic_history_has_long_bureau_reviews_and_rejections():
    cat, cal, cfg = default_catalogue(), WorkCalendar(), default_forecast_config()
    launches = generate(cat, cal, cfg, launches=200, seed=13)
    bureau = [cal.workdays_between(a.started, a.finished).value for s in launches for a in s.attempts
              if a.gate == "bureau-review"]
    assert sum(d >= 15 for d in bureau) >= 5
    rejected = {a.gate for s in launches for a in s.attempts if not a.passed}
    assert {"first-review", "bureau-review", "code-review", "design-confirmation"} <= rejected


def test_p50_and_p90_are_calibrated():
    cal = calibrate(default_catalogue(), WorkCalendar(), default_forecast_config(), launches=400, samples=600, seed=13)
    print("\n" + cal.table())
    assert cal.seconds < 60
    for checkpoint in cal.rows:
        p50, p90 = cal.coverage(checkpoint)
        assert p90 >= 0.85, (checkpoint, p90)
        assert 0.40 <= p50 <= 0.60, (checkpoint, p50)
    p50, p90 = cal.overall
    assert 0.40 <= p50 <= 0.60 and p90 >= 0.85
