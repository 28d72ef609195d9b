"""Benchmark: signed-and-encrypted WeChat pushes per second, ours against a bare endpoint.

    .venv/bin/python bench/bench_receiver.py [--pushes 3000] [--clients 4] [--timeout 180]

Starts, each in its own process on a free loopback port:
  - ours: the real receiver (launch.receiver.app.create_app) on a SQLite store in a temp folder,
    with its background applier running (it applies what lands, as in production);
  - bare: a FastAPI route that reads the body and answers "success", nothing else.
Then sends the same N signed-and-encrypted pushes (distinct nonces, distinct events; some
for launches that exist, most for none) to each with a few concurrent httpx clients, and
prints pushes/s for both, the latency percentiles, and the ratio ours/bare.

"Time to a durable inbox write" is measured from the client: the receiver answers
`success` only after the inbox transaction committed, so the request->response time is
an upper bound of it. After the run the inbox is counted: every push must be there.

Bounded: --pushes, --timeout (the whole run), loopback only. Aim: >= 300 pushes/s and
p99 < 50 ms on SQLite.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "bench-token"
APPID = "wx00000000000bench"[:18]
AES_KEY = base64.b64encode(b"b" * 32).decode().rstrip("=")


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(base: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "WEAPP_LAUNCH_HOME": str(base / "home"),
            "WEAPP_LAUNCH_DATABASE_URL": f"sqlite:///{base / 'store.db'}",
            "WEAPP_LAUNCH_WECHAT_TOKEN": TOKEN,
            "WEAPP_LAUNCH_WECHAT_ENCODING_AES_KEY": AES_KEY,
            "WEAPP_LAUNCH_WECHAT_COMPONENT_APPID": APPID,
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


# ---------------------------------------------------------------- servers (child processes)


def bare_app():
    """The baseline: same framework and server, reads the body, answers "success", nothing else."""
    from fastapi import FastAPI, Request
    from fastapi.responses import PlainTextResponse

    app = FastAPI()

    async def bare(request: Request):
        await request.body()
        return PlainTextResponse("success")

    bare.__annotations__ = {"request": Request}  # resolved here, not as a string (future annotations)
    app.add_api_route("/wechat/auth", bare, methods=["POST"])
    return app


def serve(kind: str, port: int) -> None:
    import uvicorn

    if kind == "ours":
        from launch.app import Resources
        from launch.receiver.app import create_app

        app = create_app(Resources.from_settings(), applier=os.environ.get("BENCH_NO_APPLIER") != "1")
    else:
        app = bare_app()

    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


def start(kind: str, env: dict[str, str], timeout: float = 30.0) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} server exited with {proc.returncode}")
        try:
            httpx.get(url + "/healthz", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise TimeoutError(f"{kind} server did not start")


# ---------------------------------------------------------------- load


def make_pushes(n: int, launches: list[tuple[str, str]]) -> list[tuple[dict, bytes]]:
    """N distinct pushes: every 10th a filing result for a real launch, the rest audit
    results for mini-programs we do not know (each lands, is applied as no-launch)."""
    from launch.wechat.crypto import PushCrypto
    from launch.wechat.events import to_xml

    crypto = PushCrypto(TOKEN, AES_KEY, APPID)
    now = int(time.time())
    out = []
    for i in range(n):
        if launches and i % 10 == 0:
            appid, _ = launches[(i // 10) % len(launches)]
            msg = {"AppId": APPID, "CreateTime": now + i, "InfoType": "notify_apply_icpfiling_result",
                   "authorizer_appid": appid, "beian_status": 4, "sms_verify_status": 1}
            envelope_id, element = APPID, "AppId"
        else:
            msg = {"ToUserName": f"gh_{i:012x}", "FromUserName": "od1P50M", "CreateTime": now + i,
                   "MsgType": "event", "Event": "weapp_audit_success", "SuccTime": now + i}
            envelope_id, element = msg["ToUserName"], "ToUserName"
        nonce = f"{i}{secrets.randbelow(10**9)}"
        env = crypto.envelope(to_xml(msg).decode(), envelope_id, id_element=element, nonce=nonce, timestamp=now)
        params = {"signature": crypto.signature(env.timestamp, nonce), "timestamp": env.timestamp, "nonce": nonce,
                  "encrypt_type": "aes", "msg_signature": env.msg_signature}
        out.append((params, env.body))
    return out


def run_load(url: str, pushes: list[tuple[dict, bytes]], clients: int, deadline: float) -> dict:
    import httpx

    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    cursor = iter(range(len(pushes)))

    def worker():
        with httpx.Client(timeout=10) as client:
            mine, bad = [], []
            while time.monotonic() < deadline:
                with lock:
                    i = next(cursor, None)
                if i is None:
                    break
                params, body = pushes[i]
                t0 = time.perf_counter()
                r = client.post(url + "/wechat/auth", params=params, content=body)
                dt = time.perf_counter() - t0
                if r.status_code == 200 and r.text == "success":
                    mine.append(dt)
                else:
                    bad.append(f"{r.status_code} {r.text[:80]}")
            with lock:
                latencies.extend(mine)
                failures.extend(bad)

    # warm-up (not counted): connections, imports, first SQLite pages
    with httpx.Client(timeout=10) as c:
        for _ in range(3):
            c.get(url + "/healthz")
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "ok": len(latencies),
        "failed": len(failures),
        "first_failure": failures[0] if failures else None,
        "elapsed": elapsed,
        "rate": len(latencies) / elapsed if elapsed else 0.0,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "max": latencies[-1] * 1000 if latencies else float("nan"),
        "mean": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pushes", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--launches", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=180.0, help="bound on the whole run, seconds")
    parser.add_argument("--serve", choices=["ours", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="weapp-bench-") as tmp:
        base = Path(tmp)
        env = env_for(base)
        os.environ.update({k: v for k, v in env.items() if k.startswith("WEAPP_LAUNCH_")})
        from launch.settings import Settings
        from launch.store import Store

        store = Store.from_settings(Settings())
        launches = []
        for i in range(args.launches):
            cid = store.add_client(f"bench-{i}", "压测公司", "压测小程序", "广东", "enterprise", "standalone", {}, {})
            launch = store.create_launch(cid)
            appid = "wx" + secrets.token_hex(8)
            store.set_app_ids(launch.id, appid, "gh_" + secrets.token_hex(6))
            launches.append((appid, launch.id))
        pushes = make_pushes(args.pushes, launches)
        deadline = started + args.timeout

        results = {}
        for kind in ("bare", "ours"):
            proc, url = start(kind, env)
            try:
                results[kind] = run_load(url, pushes, args.clients, deadline)
                if kind == "ours":
                    # the applier keeps going after the last response: let it finish (bounded)
                    end = min(deadline, time.monotonic() + 60)
                    while store.unapplied_events(limit=1) and time.monotonic() < end:
                        time.sleep(0.2)
            finally:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()

        from sqlalchemy import func, select

        from launch.store.models import Decision, InboxEvent

        with store.session() as s:
            inbox = s.scalar(select(func.count()).select_from(InboxEvent))
            unapplied = s.scalar(select(func.count()).select_from(InboxEvent).where(InboxEvent.applied_at.is_(None)))
            decisions = s.scalar(select(func.count()).select_from(Decision))
        store.close()

    ours, bare = results["ours"], results["bare"]
    print(f"pushes: {args.pushes} signed+encrypted, {args.clients} concurrent clients, loopback, SQLite store")
    print(f"{'':6} {'ok':>6} {'fail':>5} {'pushes/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for kind in ("bare", "ours"):
        r = results[kind]
        print(f"{kind:6} {r['ok']:>6} {r['failed']:>5} {r['rate']:>9.0f} {r['p50']:>7.2f} {r['p99']:>7.2f} {r['max']:>7.2f}")
    ratio = ours["rate"] / bare["rate"] if bare["rate"] else float("nan")
    print(f"ratio ours/bare (pushes/s): {ratio:.2f}")
    print(f"p99 request -> durable inbox write (ours, upper bound): {ours['p99']:.2f} ms")
    print(f"inbox rows: {inbox} (expected {ours['ok']}), left unapplied: {unapplied}, decisions recorded: {decisions}")
    for kind in ("bare", "ours"):
        if results[kind]["first_failure"]:
            print(f"first failure ({kind}): {results[kind]['first_failure']}")
    aim = ours["rate"] >= 300 and ours["p99"] < 50 and inbox == ours["ok"] and ours["failed"] == 0
    print("aim (>= 300 pushes/s, p99 < 50 ms, every push durable):", "met" if aim else "NOT met")
    return 0 if aim else 1


if __name__ == "__main__":
    raise SystemExit(main())
