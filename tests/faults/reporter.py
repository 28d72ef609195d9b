"""The fault suite's figures table, printed at the end of the session.

Tests record rows on their report (``user_properties`` under FIGURES_PROPERTY, see
tests/faults/conftest.py); ``pytest_runtest_logreport`` gathers them wherever reports arrive
(in the pytest-xdist controller too) and ``pytest_terminal_summary`` prints one table per
scenario family and writes it to ``test-artifacts/faults-figures.txt``.

tests/faults/conftest.py registers these hooks whenever the fault suite is collected in this
process. A whole-suite run under pytest-xdist (``./dev test``) prints its summary in the
controller, which loads only ``tests/conftest.py``; one line there makes the table appear in
that run too::

    from tests.faults.reporter import pytest_runtest_logreport, pytest_terminal_summary  # noqa: F401

Registered twice (both places), the rows are kept once and the table printed once.
"""

from __future__ import annotations

from pathlib import Path

FIGURES_PROPERTY = "weapp-fault-figures"
_ROWS: dict[str, list[dict]] = {}  # nodeid -> rows, in arrival order
_PRINTED = set()


_SECONDS: dict[str, float] = {}  # nodeid -> duration of the test's call phase


def pytest_runtest_logreport(report):
    if report.when == "call":
        _SECONDS[report.nodeid] = report.duration
    rows = [value for name, value in getattr(report, "user_properties", ()) if name == FIGURES_PROPERTY]
    if rows and report.when in ("call", "teardown"):
        _ROWS[report.nodeid] = [dict(r) for r in rows]  # the same rows again (teardown, a second hook): kept once


def render() -> str:
    rows = []
    for nodeid, rs in _ROWS.items():
        for i, r in enumerate(rs):
            row = dict(r)
            if i == 0 and nodeid in _SECONDS:
                row["test_s"] = round(_SECONDS[nodeid], 1)
            rows.append(row)
    if not rows:
        return ""
    lines = ["fault suite figures (tests/faults)"]
    width = max(len(r["scenario"]) for r in rows)
    for r in rows:
        values = "  ".join(f"{k}={v}" for k, v in r.items() if k != "scenario")
        lines.append(f"  {r['scenario']:<{width}}  {values}")
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    key = id(config)
    if key in _PRINTED:
        return
    text = render()
    if not text:
        return
    _PRINTED.add(key)
    terminalreporter.write_sep("=", "fault suite figures")
    for line in text.splitlines()[1:]:
        terminalreporter.write_line(line)
    try:
        out = Path(config.rootpath) / "test-artifacts"
        out.mkdir(exist_ok=True)
        (out / "faults-figures.txt").write_text(text + "\n", encoding="utf-8")
    except OSError:
        pass
