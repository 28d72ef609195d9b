"""GET /report on the real receiver (tests/api's fixture: uvicorn, a real store): staff with
the API key get the page; without it, with a wrong one or with a link token, 401. Then the
page in headless Chromium, with a screenshot kept under test-artifacts/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.api.conftest import API_KEY, current, make_launch, receiver  # noqa: F401 - fixtures
from tests.support.portfolio import CREDIT_CODE, ID_NUMBER, INDIVIDUAL_NAME, PHONE, seed_portfolio

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def seeded(receiver):  # noqa: F811
    store = current().store
    return seed_portfolio(store, 24, now=current().now(), catalogue=current().catalogue, calendar=current().calendar)


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr class="launch-row" data-launch="([^"]+)">', html)


def test_staff_get_the_page_with_the_api_key(receiver, seeded, make_launch):  # noqa: F811
    made = make_launch(steps=[("email-activation", 1, "waiting")])
    r = receiver.client.get(receiver.url + "/report", headers=AUTH)
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "img-src data:" in csp and "script-src" not in csp
    nonce = re.search(r"style-src 'nonce-([^']+)'", csp).group(1)
    assert f'<style nonce="{nonce}">' in r.text
    assert r.headers["cache-control"] == "no-store" and r.headers["x-content-type-options"] == "nosniff"
    rows = _rows(r.text)
    assert set(seeded) <= set(rows) and made.launch_id in rows
    assert len(rows) == len(current().store.list_launches(status="running"))
    for secret in (PHONE, ID_NUMBER, CREDIT_CODE, INDIVIDUAL_NAME):
        assert secret not in r.text


@pytest.mark.parametrize("headers,params,reason", [
    ({}, {}, "missing-credentials"),
    ({"Authorization": "Bearer wrong-key-" + "y" * 20}, {}, "bad-api-key"),
    ({"Authorization": f"Basic {API_KEY}"}, {}, "bad-credentials"),
    ({"X-Weapp-Token": "v1.k1.whatever"}, {}, "bad-credentials"),
    (AUTH, {"token": "v1.k1.whatever"}, "bad-credentials"),
])
def test_anyone_else_gets_401(receiver, seeded, headers, params, reason):  # noqa: F811
    r = receiver.client.get(receiver.url + "/report", headers=headers, params=params)
    assert r.status_code == 401
    assert r.headers.get("www-authenticate") == "Bearer"
    assert "launch-row" not in r.text and not any(lid in r.text for lid in seeded)


def test_only_get(receiver):  # noqa: F811
    assert receiver.client.post(receiver.url + "/report", headers=AUTH).status_code == 405


@pytest.mark.skipif(not Path(CHROMIUM).exists(),
                    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does it)")
def test_the_page_renders_in_headless_chromium(receiver, seeded):  # noqa: F811
    from playwright.sync_api import sync_playwright

    from launch.app.report import cjk_font_path

    SCREENSHOTS.mkdir(exist_ok=True)
    open_now = len(current().store.list_launches(status="running"))
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        try:
            context = browser.new_context(viewport={"width": 1560, "height": 1100}, extra_http_headers=AUTH)
            page = context.new_page()
            blocked = []
            page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
            outside = []
            page.on("request", lambda req: outside.append(req.url) if not req.url.startswith(("data:", receiver.url))
                    else None)
            response = page.goto(receiver.url + "/report")
            assert response.status == 200
            chart = page.locator("#chart")
            chart.wait_for()
            # the chart (a data: URI) loads under the page's CSP, at its natural size
            width, height = page.evaluate(
                "() => { const i = document.getElementById('chart'); return [i.naturalWidth, i.naturalHeight]; }")
            assert width >= 1200 and height > open_now * 30, (width, height)
            assert page.locator("tr.launch-row").count() == open_now
            assert page.locator("#count-open").inner_text() == str(open_now)
            assert not blocked, blocked  # nothing refused by the CSP (the inline style has its nonce)
            assert not outside, outside  # self-contained
            # the style applied: the table header is sticky and the cards are laid out in a row
            assert page.evaluate("() => getComputedStyle(document.querySelector('th')).position") == "sticky"
            page.screenshot(path=str(SCREENSHOTS / "portfolio-report.png"), full_page=True)
            page.locator("#at-risk").scroll_into_view_if_needed()
            page.screenshot(path=str(SCREENSHOTS / "portfolio-report-top.png"))
        finally:
            browser.close()
    # the chart itself, as `weapp-launch report` writes it
    from launch.app.report import build_portfolio, render_png

    portfolio = build_portfolio(current().store, catalogue=current().catalogue, calendar=current().calendar,
                                now=current().now(), settings=current().settings)
    (SCREENSHOTS / "portfolio-chart.png").write_bytes(render_png(portfolio))
    assert portfolio.chart["rows"] == open_now and len(portfolio.chart["date_ticks"]) >= 4
    if cjk_font_path() is None:
        pytest.skip("the page rendered, but no CJK font is installed: the chart shows boxes for Chinese "
                    "(apt-get install fonts-wqy-zenhei; .ci/run does it)")
