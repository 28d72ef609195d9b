"""One reconciliation pass over 200 authorised mini-programs waiting on WeChat, against the local
WeChat stand-in over real HTTP, beside a bare baseline in the same run.

    .venv/bin/python bench/bench_reconcile.py [--apps 200] [--budget 1000]

Builds a throw-away SQLite store (a temp dir) and a stand-in (devtools/wechat_standin, a real
uvicorn server on a loopback port, in a thread of this process). Each of N mini-programs is
authorised (pre-auth code, the admin's consent, api_query_auth; its tokens stored encrypted as
the platform client keeps them), has committed code and a review WeChat passed, and a filing
the bureau rejected; its launch waits at code-review AND at bureau-review (the launch run and
the filing branch), both opened two hours ago, both pushes lost. Then, in the same run:

  reconcile  launch.app.reconcile.reconcile: ONE indexed query for the waiting steps, then per
             mini-program get_latest_auditstatus + get_icp_entrance_info through the platform
             client (tokens read from the store, decrypted), the shared mapping, and a decision
             recorded through submit_decision (validated, written, the resume tried) per gate.
  second     the same pass again: every gate decided, nothing waits — the steady-state cost.
  bare       the same number of raw httpx GETs to the same two stand-in paths with the same
             tokens: no store, no mapping, no decision.

Prints wall times, API calls (ours and the stand-in's log), per-call times and the ratio of the
pass to the bare calls. Asserts only that every gate was decided once.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from launch.app import FixedClock, Resources  # noqa: E402
from launch.app.reconcile import reconcile  # noqa: E402
from launch.settings import Settings  # noqa: E402
from launch.wechat.platform.tokens import remember_ticket  # noqa: E402
from tests.support.standin import COMPONENT_APPID, SECRET, start_standin  # noqa: E402

NOW = datetime(2026, 10, 20, 4, 0, tzinfo=UTC)
WAIT = 1800
REASONS = [{"key_name": "主体负责人", "error": "负责人电话无法接通", "suggest": "确认电话可接通后重新提交"}]


class _NoPrefect:
    """The bench's steps carry no flow run: nothing to resume (the in-store work is what is timed)."""

    def resume_if_parked(self, *args, **kwargs) -> bool:
        return False


def build(res: Resources, standin, n: int) -> tuple[list[tuple[str, str]], float]:
    """N authorised mini-programs, each with a passed review and a bureau rejection on the
    stand-in, and a launch waiting at code-review and bureau-review. Returns [(appid, token)]."""
    t0 = time.perf_counter()
    store = res.store
    remember_ticket(store, standin.ticket(), NOW, component_appid=COMPONENT_APPID)
    client_id = store.add_client("bench", "Bench Ltd", "Bench Shop", "广东", "enterprise", "standalone", {}, {})
    opened = NOW - timedelta(hours=2)
    apps: list[tuple[str, str]] = []
    for _ in range(n):
        app = standin.authorized()
        store.save_authorizer(app.appid, app.refresh_token, at=opened, token=app.token,
                              expires_at=NOW + timedelta(hours=2), func_info=[18, 156])
        assert standin.call("/wxa/commit", app.token, {"template_id": 1, "ext_json": "{}", "user_version": "1.0.0",
                                                       "user_desc": "bench"})["errcode"] == 0
        assert standin.call("/wxa/submit_audit", app.token, {})["errcode"] == 0
        launch = store.create_launch(client_id, created_at=opened)
        store.set_app_ids(launch.id, app.appid, app.original_id, at=opened)
        store.open_step(launch.id, "code-review", 1, started_at=opened)
        store.open_step(launch.id, "bureau-review", 1, started_at=opened)
        apps.append((app.appid, app.token))
    standin.control("drop", kind="*", count=10 * n)  # every result push is lost
    standin.advance(kind="review")  # WeChat passes every review
    world = standin.standin.world
    with world.lock:  # the bureau rejected every filing (state set directly: the filing's own path is tested)
        for appid, _ in apps:
            f = world.authorizers[appid].filing
            f.status, f.audit_data, f.sms_verify_status, f.due_at = 5, list(REASONS), None, None
    return apps, time.perf_counter() - t0


def bare(url: str, apps: list[tuple[str, str]], calls: int) -> float:
    """`calls` raw GETs to the stand-in's two paths, round robin over the apps' tokens."""
    paths = ("/wxa/get_latest_auditstatus", "/wxa/icp/get_icp_entrance_info")
    with httpx.Client(timeout=10) as http:
        t0 = time.perf_counter()
        for i in range(calls):
            _, token = apps[(i // 2) % len(apps)]
            r = http.get(url + paths[i % 2], params={"access_token": token})
            assert r.json()["errcode"] == 0
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--budget", type=int, default=1000)
    args = parser.parse_args()

    standin = start_standin(audit_quota_per_month=10 * args.apps)  # platform-wide quota: not the subject here
    home = Path(tempfile.mkdtemp(prefix="weapp-bench-reconcile-"))
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'store.db'}",
                        wechat_component_appid=COMPONENT_APPID, wechat_component_secret=SECRET,
                        wechat_api_base=standin.url, wechat_reconcile_seconds=WAIT)
    res = Resources(settings=settings, clock=FixedClock(NOW), _orchestrator=_NoPrefect(), _notifier=(None, None, None))
    try:
        apps, setup = build(res, standin, args.apps)
        platform = res.wechat
        log = standin.standin
        before = len(log.calls)

        t0 = time.perf_counter()
        report = reconcile(res, platform, NOW, older_than_seconds=WAIT, budget=args.budget)
        wall = time.perf_counter() - t0
        served = len(log.calls) - before

        t0 = time.perf_counter()
        again = reconcile(res, platform, NOW, older_than_seconds=WAIT, budget=args.budget)
        second = time.perf_counter() - t0

        baseline = bare(standin.url, apps, report.calls)

        decided = {(d.launch_id, d.gate) for d in report.decided}
        assert len(decided) == len(report.decided) == 2 * args.apps, report.counts()
        assert not report.errors and again.calls == 0 and not again.decided

        per_call = wall / max(1, report.calls)
        bare_per_call = baseline / max(1, report.calls)
        print(f"mini-programs waiting on WeChat      {args.apps} (2 gates each: code-review, bureau-review)")
        print(f"set-up (authorise, commit, submit)   {setup:8.2f} s (not timed below)")
        print(f"reconcile pass                        {wall:8.3f} s  steps {report.asked}, decided "
              f"{len(report.decided)}, API calls {report.calls} (stand-in served {served})")
        print(f"  per API call                        {per_call * 1000:8.2f} ms  (call + mapping + decision)")
        print(f"second pass (nothing waits)           {second * 1000:8.2f} ms  API calls {again.calls}")
        print(f"bare httpx GETs ({report.calls})              {baseline:8.3f} s  ({bare_per_call * 1000:.2f} ms each)")
        print(f"ratio pass / bare                     {wall / baseline:8.2f} x")
        print(f"calls per mini-program                {report.calls / args.apps:8.2f}  (one per API per pass)")
    finally:
        res.close()
        standin.close()


if __name__ == "__main__":
    main()
