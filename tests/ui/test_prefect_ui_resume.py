"""A staff member approves a parked gate in the real Prefect UI, in a real (headless) Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.flows.helpers import new_launch, parked_at, waiting_at
from tests.support.stack import stack_resources
from tests.support.wait import wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="Debian's chromium is not installed (apt-get install chromium; .ci/run does it)"),
]


def test_staff_resume_form_in_the_prefect_ui(stack):
    from playwright.sync_api import sync_playwright

    started, _ = new_launch("client-acme.yaml")
    launch_id, run_id = started["launch_id"], started["flow_run_id"]
    wait_for(lambda: parked_at(run_id, "email-activation-1"), 120, "the launch to park at its first gate")
    SCREENSHOTS.mkdir(exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # Prefect's API is locked: the browser gets nothing without the auth string…
            assert page.request.get(f"{stack.api_url}/admin/version").status == 401
            # …so a staff member opens the UI, logs in once at its own prompt with the string `up`
            # wrote to <home>/prefect-auth, then follows the link as before.
            page.goto(stack.ui_url)
            password = page.locator("input[type=password]")
            password.fill(stack.auth_file.read_text().strip())
            page.screenshot(path=str(SCREENSHOTS / "prefect-ui-login.png"), full_page=True)
            page.get_by_role("button", name="Login").click()
            password.wait_for(state="detached", timeout=30_000)
            def submit_in_the_ui(attempt: int) -> None:
                page.goto(started["url"])  # the URL `weapp-launch start` prints
                page.get_by_role("button", name="Resume").first.click()
                dialog = page.get_by_role("dialog")
                # The form carries our gate description: what to do, by when, and the CLI alternative.
                dialog.get_by_text("Email activation (attempt 1)").wait_for(timeout=30_000)
                assert launch_id in dialog.inner_text()
                dialog.locator("textarea").first.fill("王经理")
                page.screenshot(path=str(SCREENSHOTS / f"prefect-ui-resume-form-{attempt}.png"), full_page=True)
                dialog.get_by_role("button", name="Submit").click()

            def decided():
                return stack_resources().store.get_decision(launch_id, "email-activation", 1)

            submit_in_the_ui(1)
            # Prefect's server on SQLite can answer a resume "database is locked" when the machine is
            # saturated (its server log says so; the UI shows the error and the run stays paused).
            # Staff then submit again: so does this test, once, and only if the run is still parked.
            try:
                wait_for(decided, 60, "the UI decision to reach the store")
            except AssertionError:
                page.screenshot(path=str(SCREENSHOTS / "prefect-ui-after-submit-1.png"), full_page=True)
                assert parked_at(run_id, "email-activation-1"), "the run left the gate but no decision was recorded"
                submit_in_the_ui(2)
                wait_for(decided, 120, "the UI decision to reach the store (submitted again)")
        finally:
            browser.close()

    decision = stack_resources().store.get_decision(launch_id, "email-activation", 1)
    assert (decision.channel, decision.actor, decision.outcome) == ("ui", "王经理", "done")
    # The flow went on to the next gate.
    wait_for(lambda: waiting_at(launch_id, "subject-info"), 120, "the next gate to open")
