"""The portfolio report: data from the store, the chart, the page, the daily summary, the CLI.
No Prefect server, no receiver (tests/report/test_report_api.py serves the page)."""

from __future__ import annotations

import base64
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from launch.domain.calendar import WorkCalendar
from launch.domain.catalogue import default_catalogue
from launch.app.report import (
    CJK_FONT,
    build_portfolio,
    cjk_font_path,
    phase_lanes,
    render_html,
    render_png,
    summary_markdown,
    write_report,
)
from tests.report.conftest import NOW
from tests.support.portfolio import CREDIT_CODE, ID_NUMBER, INDIVIDUAL_NAME, PHONE, seed_portfolio

CAT, CAL = default_catalogue(), WorkCalendar()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def build(store, **kw):
    return build_portfolio(store, catalogue=CAT, calendar=CAL, now=NOW, **kw)


def rows_in(html: str) -> list[str]:
    return re.findall(r'<tr class="launch-row" data-launch="([^"]+)">', html)


def test_one_row_per_open_launch_in_data_chart_and_page(portfolio_store):
    store, ids, released = portfolio_store
    p = build(store)
    assert sorted(r.launch_id for r in p.rows) == sorted(ids)  # the released launch is not open
    png = render_png(p)
    assert png.startswith(PNG_MAGIC)
    assert p.chart["rows"] == len(ids) and len(p.chart["labels"]) == len(ids)
    for row, label in zip(p.rows, p.chart["labels"]):
        assert label.startswith(row.launch_id)
    html = render_html(p, png=png)
    assert sorted(rows_in(html)) == sorted(ids)
    assert released not in html
    for row in p.rows:
        assert {b.phase for b in row.phases} == set(CAT.phases)
        assert row.go_live_p50 <= row.go_live_p90
        assert any(b.critical for b in row.phases)


def test_the_chart_has_dates_on_its_axis_and_a_row_height_per_launch(portfolio_store):
    store, ids, _ = portfolio_store
    p = build(store, forecaster=False)
    render_png(p)
    ticks = p.chart["date_ticks"]
    assert len(ticks) >= 4, ticks
    assert all(re.fullmatch(r"\d{2}-\d{2}|\d{4}-\d{2}|\d{4}", t) for t in ticks), ticks
    assert p.chart["date_offset"] == "2026"
    small = build(store, forecaster=False, launches=store.list_launches(status="running")[:3])
    render_png(small)
    assert p.chart["size_px"][1] > small.chart["size_px"][1] + (len(ids) - 3) * 30


def test_the_cjk_font_is_found():
    path = cjk_font_path()
    if path is None:
        pytest.skip(f"no CJK font installed ({CJK_FONT}: apt-get install fonts-wqy-zenhei; .ci/run does it)")
    from matplotlib import font_manager

    assert "wqy" in path.lower() or "cjk" in path.lower() or "han" in path.lower(), path
    assert font_manager.FontProperties(family=CJK_FONT).get_family() == [CJK_FONT]


def test_no_personal_data_and_everything_escaped(fresh_store):
    store = fresh_store
    seed_portfolio(store, 5, now=NOW, catalogue=CAT, calendar=CAL, individuals_every=2)
    hostile = store.add_client("hostile", '<img src=x onerror=alert(1)>公司', f'<script>alert("x")</script>{PHONE}',
                               "广东", "enterprise", "standalone", {"phone": PHONE}, {"phone": [PHONE]})
    launch = store.create_launch(hostile, created_at=NOW - timedelta(days=3))
    p = build(store)
    html = render_html(p)
    md = summary_markdown(p)
    for text in (html, md, str(p.to_json())):
        for secret in (PHONE, ID_NUMBER, CREDIT_CODE, INDIVIDUAL_NAME, "zhang.san@example.com"):
            assert secret not in text, secret
    assert "张**" in html  # an individual client: surname only
    assert "<script" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html and "138****5678" in html
    assert launch.id in html
    # self-contained: the chart is inline, nothing is fetched
    assert re.search(r'<img id="chart" src="data:image/png;base64,', html)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    chart = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(chart).startswith(PNG_MAGIC)


def test_at_risk_lists_overdue_gates_with_who_must_act(portfolio_store):
    store, ids, _ = portfolio_store
    p = build(store)
    overdue = [r for r in p.rows if r.overdue]
    assert overdue, "the seed leaves some launches waiting past a deadline"
    html = render_html(p)
    table = html.split('id="at-risk-table"', 1)[1].split("</table>", 1)[0]
    for r in overdue:
        assert f'data-launch="{r.launch_id}"' in table
        w = next(w for w in r.waiting if w.overdue)
        assert w.actor_zh and w.actor_zh in table and "逾期" in table
    on_time = [r for r in p.rows if not r.at_risk]
    for r in on_time:
        assert f'data-launch="{r.launch_id}"' not in table
    assert f"有风险 / At risk ({len(p.at_risk)})" in html


def test_commitments_drive_the_risk_column(portfolio_store):
    store, ids, _ = portfolio_store
    if not hasattr(store, "set_commitment"):
        pytest.skip("the store keeps no commitments yet (issue 13 items 1-3)")
    before = build(store)
    assert not before.has_commitments
    assert "承诺 committed" not in render_html(before).split('id="launch-table"', 1)[1]
    row = next(r for r in before.rows if not r.overdue)
    store.set_commitment(row.launch_id, row.go_live_p50 - timedelta(days=10), at=NOW)  # before P50: late
    ok_row = next(r for r in before.rows if not r.overdue and r.launch_id != row.launch_id)
    store.set_commitment(ok_row.launch_id, ok_row.go_live_p90 + timedelta(days=30), at=NOW)
    p = build(store)
    late = next(r for r in p.rows if r.launch_id == row.launch_id)
    ok = next(r for r in p.rows if r.launch_id == ok_row.launch_id)
    assert late.risk == "late" and late.committed == row.go_live_p50 - timedelta(days=10)
    assert ok.risk == "ok" and ok not in p.at_risk
    assert p.at_risk[0].launch_id == late.launch_id  # late first
    html = render_html(p)
    table = html.split('id="at-risk-table"', 1)[1].split("</table>", 1)[0]
    assert f'data-launch="{late.launch_id}"' in table and "已延误 / late" in table
    render_png(p)  # the committed tick draws


def test_a_failing_forecast_falls_back_to_the_plan_for_that_launch(portfolio_store):
    store, ids, _ = portfolio_store
    victim = ids[0]

    def forecaster(store_, launch, as_of):
        if launch.id == victim:
            raise RuntimeError("boom")
        from launch.app.report import plan_forecast

        return plan_forecast(store_, launch, catalogue=CAT, calendar=CAL, as_of=as_of)

    p = build(store, forecaster=forecaster)
    assert p.errors == (f"{victim}: RuntimeError",)
    assert {r.source for r in p.rows} == {"forecast", "plan"}
    assert "部分上线的预测失败" in render_html(p)


def test_plan_forecast_respects_what_happened():
    """A done phase ends when it did; an open one not before today; release last."""
    from launch.app.report import plan_forecast

    class S:  # a store with one launch and two steps
        def __init__(self, steps):
            self._steps = steps

        def steps_for(self, launch_id):
            return self._steps

    from launch.store.records import LaunchRecord, StepRecord

    utc = ZoneInfo("UTC")
    start = datetime(2026, 10, 8, 2, tzinfo=utc)
    launch = LaunchRecord("l-0000000001", "c-1", "running", "standalone", None, None, None, start, start, None)

    def step(i, gate, status, opened, done=None):
        return StepRecord(i, launch.id, gate, 1, status, None, None, opened, opened + timedelta(days=1), False, done,
                          None, None)

    steps = [
        step(1, "email-activation", "done", start, start + timedelta(hours=5)),
        step(2, "subject-info", "done", start + timedelta(hours=6), start + timedelta(days=1)),
        step(3, "wechat-verification", "done", start + timedelta(days=1), start + timedelta(days=3)),
        step(4, "mini-program-profile", "done", start + timedelta(days=3), start + timedelta(days=4)),
        step(5, "design-draft", "waiting", start + timedelta(days=4)),
    ]
    fc = plan_forecast(S(steps), launch, catalogue=CAT, calendar=CAL, as_of=NOW.date())
    by = {s.phase: s for s in fc.steps}
    assert by["registration"].actual_finish == date(2026, 10, 12)
    assert by["design"].actual_start == date(2026, 10, 12) and by["design"].actual_finish is None
    assert by["design"].finish_p50 >= NOW.date()
    assert by["release"].finish_p50 == fc.p50 and fc.p50 <= fc.p90
    assert by["release"].critical and by["registration"].critical


def test_lanes_put_the_filing_beside_the_build_chain():
    lanes = phase_lanes(CAT)
    assert lanes["filing"] == 1
    assert {p for p, lane in lanes.items() if lane == 0} == {"registration", "design", "implementation", "content",
                                                              "review", "release"}


def test_two_hundred_open_launches_build(fresh_store):
    """Completes and draws one line per launch (the speed target lives in bench/bench_report.py)."""
    seed_portfolio(fresh_store, 200, now=NOW, catalogue=CAT, calendar=CAL)
    p = build(fresh_store)
    png = render_png(p)
    html = render_html(p, png=png)
    assert len(p.rows) == 200 and p.chart["rows"] == 200 and len(rows_in(html)) == 200
    assert p.chart["size_px"][1] < 65_536


def test_empty_portfolio(fresh_store):
    p = build(fresh_store)
    html = render_html(p)
    assert rows_in(html) == [] and 'id="at-risk-none"' in html
    assert "# 上线组合日报" in summary_markdown(p)


def test_write_report_writes_page_and_chart(portfolio_store, tmp_path):
    store, ids, _ = portfolio_store
    html_path, png_path = write_report(build(store), tmp_path / "out" / "portfolio.html")
    assert png_path == tmp_path / "out" / "portfolio.png"
    assert png_path.read_bytes().startswith(PNG_MAGIC)
    assert len(rows_in(html_path.read_text(encoding="utf-8"))) == len(ids)


# --------------------------------------------------------------------------- the watcher's summary


def test_summary_markdown_lists_the_at_risk_launches(portfolio_store):
    store, ids, _ = portfolio_store
    p = build(store)
    md = summary_markdown(p)
    assert f"进行中 / open launches: **{len(ids)}**" in md
    for r in p.at_risk:
        assert f"`{r.launch_id}`" in md
    assert "## 谁需要处理 / who must act" in md


def test_summary_is_due_once_per_beijing_day():
    from launch.app.artifacts import summary_due

    sh = ZoneInfo("Asia/Shanghai")
    now = datetime(2026, 10, 20, 0, 10, tzinfo=sh)
    assert summary_due(None, now, "Asia/Shanghai")
    assert not summary_due(datetime(2026, 10, 20, 0, 5, tzinfo=sh), now, "Asia/Shanghai")
    # 23:30 UTC on the 19th is 07:30 on the 20th in Beijing: already published today
    assert not summary_due(datetime(2026, 10, 19, 23, 30, tzinfo=ZoneInfo("UTC")), now + timedelta(hours=8), "Asia/Shanghai")
    assert summary_due(datetime(2026, 10, 19, 23, 59, tzinfo=sh), now, "Asia/Shanghai")


def test_publish_summary_once_per_day(portfolio_store, tmp_path):
    """Published once a day, read back from the orchestrator's artifacts (the in-memory one)."""
    from launch.app import FixedClock, Resources
    from launch.app.artifacts import publish_portfolio_summary
    from launch.process.memory import InMemoryOrchestrator
    from launch.settings import Settings

    store, ids, _ = portfolio_store
    clock = FixedClock(NOW)
    orch = InMemoryOrchestrator(CAT)
    orch.clock = clock.now
    res = Resources(settings=Settings(home=tmp_path), clock=clock, _store=store, _catalogue=CAT,
                    _calendar=CAL, _orchestrator=orch)
    first = publish_portfolio_summary(res)
    assert first["published"] and first["open"] == len(ids)
    [artifact] = orch.artifact_history
    assert artifact["key"] == "portfolio-summary" and artifact["type"] == "markdown"
    assert PHONE not in artifact["data"] and INDIVIDUAL_NAME not in artifact["data"]
    clock.advance(hours=3)
    assert not publish_portfolio_summary(res)["published"]
    clock.advance(days=1)
    assert publish_portfolio_summary(res)["published"]
    assert len(orch.artifact_history) == 2


# --------------------------------------------------------------------------- the command


def test_report_command_writes_the_files(tmp_path):
    import typer
    from typer.testing import CliRunner

    from launch.app import SystemClock
    from launch.cli.report import register
    from tests.support.resources import make_resources

    res = make_resources(tmp_path / "home", clock=SystemClock(), database_url=f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        now = res.now()
        ids = seed_portfolio(res.store, 4, now=now, catalogue=res.catalogue, calendar=res.calendar)
        app = typer.Typer()
        app.command("noop")(lambda: None)  # a group, as the real CLI is
        register(app)
        out = tmp_path / "r" / "p.html"
        result = CliRunner().invoke(app, ["report", "--out", str(out)], obj=res)
        assert result.exit_code == 0, result.output
        assert "4 个进行中的上线" in result.output and str(out) in result.output
        assert sorted(rows_in(out.read_text(encoding="utf-8"))) == sorted(ids)
        assert out.with_suffix(".png").read_bytes().startswith(PNG_MAGIC)
        bad = CliRunner().invoke(app, ["report", "--out", str(out), "--as-of", "20-10-2026"], obj=res)
        assert bad.exit_code == 2
        js = CliRunner().invoke(app, ["report", "--out", str(out), "--json"], obj=res)
        assert js.exit_code == 0 and '"open_launches": 4' in js.output
    finally:
        res.close()
