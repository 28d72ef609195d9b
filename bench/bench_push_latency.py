"""Push received → flow running again: how long a launch parked at a gate WeChat decides takes
to run again, by WeChat's push and by the watcher's poll, each beside a bare Prefect resume
measured the same way in the same run.

    .venv/bin/python bench/bench_push_latency.py [--launches 8] [--rounds 4] [--window 3] [--postgres]

Starts a real local stack in a temp dir (devtools.stack.Stack: a Prefect server and the
`serve()` runner, SQLite; `--postgres`: Prefect's database and the store each in a fresh
PostgreSQL database at WEAPP_LAUNCH_TEST_POSTGRES_URL, dropped at the end), the receiver
(`weapp-launch api`) and the WeChat stand-in (devtools/wechat_standin, real HTTP, a thread of
this process) configured as the third-party platform, pushing signed AES pushes to the
receiver — as `./dev demo` does. Beside it, a second `serve()` runner for the bare flow of
bench/bare_flow.py (same server, same poll interval).

The gate is `face-verification` (人脸核身), the quickest gate WeChat decides by push to
reach: each launch's registration, `filing-materials` and `filing-submission` are decided
ahead in the store (taken without parking), each mini-program is authorised on the stand-in
(pre-auth code, the admin's consent, api_query_auth), so the launch run starts the filing and
design branches and the filing run's gate creates the face-check task on WeChat itself
(create_icp_verifytask) and parks. At most `--window` launches are on their way to the gate
at a time. The stand-in is scripted to FAIL every face check, so each launch loops on the gate:
every round decides attempt n and the run parks again at attempt n+1 — `--rounds` samples per
launch without starting new runs. Samples run one at a time, each on a quiet stack (no flow-run
process alive), push / poll / bare interleaved so background load hits all three alike:

  push   the admin "finishes" the face check (/_standin/advance); the stand-in sends
         notify_icpfiling_verify_result to the receiver, which lands it in the inbox, answers
         `success`, and its applier records the decision and resumes the run.
         Start: the inbox row's received_at (the receiver has the push durably).
  poll   the push is lost on purpose (/_standin/drop, then /_standin/advance). This process
         runs the deadline watcher's repair pass (launch.app.watcher.repair: inbox, revive,
         lost resumes, joins, then launch.app.reconcile with the stack's platform and
         WEAPP_LAUNCH_WECHAT_RECONCILE_SECONDS=1), which asks query_icp_verifytask about every
         waiting face gate and decides this one as the push would have.
         Start: the pass's start. The moment WeChat's state changed is not something the tool
         can observe (that is why it polls); in real use the poll adds up to one watcher
         interval plus WECHAT_RECONCILE_SECONDS on top, a setting, not a cost measured here.
  bare   a bare flow (bench/bare_flow.py: suspend_flow_run(wait_for_input=...)) on the same
         server, resumed with resume_flow_run(...). Start: just before the call.

End, for all three: the timestamp of the first RUNNING state Prefect recorded after the
run's pause (read from the run's state history, so the figure is not bounded by a poll
interval of ours). Each figure is split at the decision's decided_at (ours) and at the first
state after the pause (Prefect has the resume: Scheduled/Pending), then the runner's poll
(PREFECT_RUNNER_POLL_FREQUENCY=1 s for both runners) and the flow-run process start up to
RUNNING.

Prints p50 / p95 / max per path and the ratios to the bare baseline. Asserts nothing except
that every gate attempt sampled was decided exactly once (by the channel its path says). Not
run in CI. The machine has 2 cores and is shared: the figures are noisy; n is small, so p95
is close to max.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.stack import Stack, stop_group  # noqa: E402
from tests.support.postgres import pg_admin, pg_url  # noqa: E402

GATE = "face-verification"
PUSH_KIND = "notify_icpfiling_verify_result"
AHEAD = ("email-activation", "subject-info", "wechat-verification", "mini-program-profile",
         "filing-materials", "filing-submission")  # client-acme's registration + the filing's staff gates
BARE_DEPLOYMENT = "bare/bench"


@dataclass
class Sample:
    path: str  # push | poll | bare
    start: datetime
    decided: datetime | None  # ours: the decision's decided_at
    resumed: datetime  # first state Prefect recorded after the pause
    running: datetime  # first RUNNING after the pause
    sent: datetime | None = None  # push: the stand-in made the push

    @property
    def total(self) -> float:
        return (self.running - self.start).total_seconds()


@dataclass
class Launch:
    launch_id: str
    appid: str
    original_id: str
    run_id: str | None = None  # the filing branch's flow run
    samples: list[tuple[int, str]] = field(default_factory=list)  # (attempt, path)


# ----------------------------------------------------------------------------- helpers


def _signals_interrupt():
    """SIGTERM / SIGHUP end the bench like Ctrl-C (KeyboardInterrupt): the finally cleans up."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)






def wait_until(what: str, fn, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:.0f} s")
        time.sleep(interval)


def states(run_id: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return sorted(client.read_flow_run_states(UUID(run_id)), key=lambda s: s.timestamp)


def parked_at(run_id: str, key: str) -> bool:
    """Paused at `key` with its Resume form saved (only then can it be resumed)."""
    from prefect.client.orchestration import get_client

    from launch.orchestration.prefect import form_saved

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(UUID(run_id)).state
    return bool(state and state.is_paused() and state.state_details.pause_key == key and form_saved(run_id))


def resumed_and_running(run_id: str, key: str) -> tuple[datetime, datetime] | None:
    """(first state after the pause at `key`, first RUNNING after it) from Prefect's history."""
    history = states(run_id)
    paused = [i for i, s in enumerate(history) if s.is_paused() and s.state_details.pause_key == key]
    if not paused:
        return None
    after = history[paused[-1] + 1:]
    running = next((s for s in after if s.type.value == "RUNNING"), None)
    if running is None:
        return None
    return after[0].timestamp, running.timestamp


def quiet(api_url: str, timeout: float) -> None:
    """No flow-run process alive: the previous sample's run has parked again."""
    from tests.support.processes import flow_run_processes

    wait_until("no flow-run process alive", lambda: not flow_run_processes(api_url), timeout, 0.3)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def pct(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100)."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# ----------------------------------------------------------------------------- the world


def start_standin(wechat: dict[str, str]):
    """The stand-in as ./dev demo starts it: pushing to the receiver with its secrets."""
    import secrets

    from devtools.wechat_standin import StandinConfig, start_in_thread

    secret = secrets.token_hex(16)
    config = StandinConfig(
        component_appid=wechat["WEAPP_LAUNCH_WECHAT_COMPONENT_APPID"], component_appsecret=secret,
        token=wechat["WEAPP_LAUNCH_WECHAT_TOKEN"], encoding_aes_key=wechat["WEAPP_LAUNCH_WECHAT_ENCODING_AES_KEY"],
        receiver_url=wechat["WEAPP_LAUNCH_PUBLIC_URL"], ticket_every=None, push_retry_delay=1.0,
        audit_quota_per_month=1000,
    )
    running = start_in_thread(config)
    env = {"WEAPP_LAUNCH_WECHAT_COMPONENT_SECRET": secret, "WEAPP_LAUNCH_WECHAT_API_BASE": running.url,
           "WEAPP_LAUNCH_WECHAT_RECONCILE_SECONDS": "1"}
    return running, env


class Control:
    """The stand-in's control API over HTTP."""

    def __init__(self, url: str):
        import httpx

        self.http = httpx.Client(base_url=url.rstrip("/") + "/_standin", timeout=30)

    def post(self, name: str, **body) -> dict:
        r = self.http.post(name, json=body)
        if r.status_code != 200:
            raise RuntimeError(f"/_standin/{name}: HTTP {r.status_code} {r.text[:300]}")
        return r.json()

    def pushes(self, kind: str) -> list[dict]:
        return self.http.get("pushes", params={"kind": kind}).json()["pushes"]

    def close(self) -> None:
        self.http.close()


def prepare(res, control: Control, n: int, rounds: int) -> list[Launch]:
    """N clients with a launch each: registration and the filing's staff gates decided ahead, the
    mini-program authorised on the stand-in, every face check scripted to fail (on advance only)."""
    from devtools.simulator import PASSING
    from launch.app.decisions import submit_decision
    from launch.app.preflight import add_client
    from tests.support.intakes import fresh_intake

    platform = res.wechat
    assert platform is not None, "no platform configured"
    out = []
    for _ in range(n):
        intake, _ = fresh_intake()
        client_id, _ = add_client(res, intake, res.now().date())
        launch = res.store.create_launch(client_id)
        appid, original_id = "wx" + uuid.uuid4().hex[:16], "gh_" + uuid.uuid4().hex[:12]
        for gate in AHEAD:
            data = {"decided_by": "运营 / bench", **PASSING[gate]}
            if gate == "subject-info":
                data.update(appid=appid, original_id=original_id)
            result = submit_decision(res, launch.id, gate, data, "cli", attempt=1)
            assert result.status == "recorded", (gate, result)
        pre = platform.auth.create_preauthcode()
        consent = control.post("authorize", appid=appid, original_id=original_id, pre_auth_code=pre.pre_auth_code)
        platform.auth.query_auth(consent["auth_code"])
        for _ in range(rounds + 1):  # the admin fails every face check: the gate comes round again
            control.post("script", appid=appid, kind="face", result="fail", after=-1)
        out.append(Launch(launch.id, appid, original_id))
    return out


def park_launches(res, launches: list[Launch], window: int, timeout: float, api_url: str) -> float:
    """Start every launch, at most `window` not yet parked at face-verification-1; wait for all."""
    from launch.app.launches import start_launch

    store = res.store
    key = f"{GATE}-1"

    def is_parked(launch: Launch) -> bool:
        step = store.get_step(launch.launch_id, GATE, 1)
        if step is None or step.status != "waiting" or not step.flow_run_id or "task_id=" not in (step.note or ""):
            return False
        launch.run_id = step.flow_run_id
        return parked_at(step.flow_run_id, key)

    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout
    started: list[Launch] = []
    parked: set[str] = set()

    def count() -> int:
        for launch in started:
            if launch.launch_id not in parked and is_parked(launch):
                parked.add(launch.launch_id)
        return len(parked)

    for launch in launches:
        while len(started) - count() >= window:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(parked)}/{len(started)} launches parked at {key} after {timeout:.0f} s")
            time.sleep(0.5)
        client_id = store.get_launch(launch.launch_id).client_id
        start_launch(res, client_id)
        started.append(launch)
        print(f"  started {len(started)}/{len(launches)}, parked {len(parked)}", flush=True)
    wait_until(f"all {len(launches)} launches parked at {key}", lambda: count() == len(launches),
               max(1.0, deadline - time.monotonic()), 0.5)
    quiet(api_url, 300)  # the launch runs parked on join-design, the design runs at design-draft
    return time.perf_counter() - t0


def start_bare(n: int, rounds: int, timeout: float, api_url: str) -> list[str]:
    from prefect.deployments import run_deployment

    ids = []
    for _ in range(n):
        run = run_deployment(BARE_DEPLOYMENT, parameters={"tasks": rounds, "suspends": rounds}, timeout=0)
        ids.append(str(run.id))
    for rid in ids:
        wait_until("bare run parked at gate-0", lambda rid=rid: parked_at(rid, "gate-0"), timeout, 0.3)
    quiet(api_url, 120)
    return ids


def wait_bare_deployment(timeout: float) -> None:
    from prefect.client.orchestration import get_client

    def ready() -> bool:
        try:
            with get_client(sync_client=True) as client:
                d = client.read_deployment_by_name(BARE_DEPLOYMENT)
            return str(getattr(d.status, "value", d.status)).upper() == "READY"
        except Exception:  # noqa: BLE001 - not registered yet
            return False

    wait_until("the bare flow's deployment served", ready, timeout, 0.5)


# ----------------------------------------------------------------------------- one sample each


def sample_push(res, control: Control, launch: Launch, attempt: int, timeout: float) -> Sample:
    key = f"{GATE}-{attempt}"
    control.post("advance", appid=launch.appid, kind="face")  # answers once the push was answered
    decision = wait_until("the push's decision", lambda: res.store.get_decision(launch.launch_id, GATE, attempt),
                          timeout)
    assert decision.channel == "wechat" and decision.inbox_id, decision
    row = res.store.get_event(decision.inbox_id)
    found = wait_until(f"{key} running again", lambda: resumed_and_running(launch.run_id, key), timeout)
    pushes = [p for p in control.pushes(PUSH_KIND) if p["appid"] == launch.appid and p["status"] == "sent"]
    sent = datetime.fromtimestamp(pushes[-1]["created"], UTC) if pushes else None
    launch.samples.append((attempt, "push"))
    return Sample("push", _aware(row.received_at), _aware(decision.decided_at), *found, sent=sent)


def sample_poll(res, control: Control, launch: Launch, attempt: int, timeout: float) -> tuple[Sample, int]:
    from launch.app.watcher import repair

    key = f"{GATE}-{attempt}"
    control.post("drop", kind=PUSH_KIND, appid=launch.appid, count=1)
    before = len(control.pushes(PUSH_KIND))
    control.post("advance", appid=launch.appid, kind="face")
    made = control.pushes(PUSH_KIND)
    assert len(made) == before + 1 and made[-1]["status"] == "dropped", made[-1:]
    step = res.store.get_step(launch.launch_id, GATE, attempt)
    wait = res.settings.wechat_reconcile_seconds + 0.2 - (datetime.now(UTC) - _aware(step.started_at)).total_seconds()
    if wait > 0:
        time.sleep(wait)  # the gate must have waited longer than the reconcile threshold
    start = datetime.now(UTC)
    report = repair(res)
    mine = [r for r in report.repaired if r.kind == "reconcile" and r.launch_id == launch.launch_id]
    assert mine, (report.summary(), report.errors[:3])
    decision = res.store.get_decision(launch.launch_id, GATE, attempt)
    assert decision is not None and decision.channel == "wechat-api", decision
    found = wait_until(f"{key} running again", lambda: resumed_and_running(launch.run_id, key), timeout)
    launch.samples.append((attempt, "poll"))
    return Sample("poll", start, _aware(decision.decided_at), *found), report.reconcile_calls


def sample_bare(run_id: str, n: int, timeout: float) -> Sample:
    from prefect.flow_runs import resume_flow_run

    key = f"gate-{n}"
    start = datetime.now(UTC)
    resume_flow_run(UUID(run_id), run_input={"decided_by": "bench"})
    found = wait_until(f"bare {key} running again", lambda: resumed_and_running(run_id, key), timeout)
    return Sample("bare", start, None, *found)


# ----------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--launches", type=int, default=8, help="launches parked at the gate (half push, half poll)")
    ap.add_argument("--rounds", type=int, default=4, help="gate attempts decided per launch (samples per launch)")
    ap.add_argument("--window", type=int, default=3, help="launches on their way to the gate at a time")
    ap.add_argument("--postgres", action="store_true", help="Prefect and the store on PostgreSQL "
                    "(WEAPP_LAUNCH_TEST_POSTGRES_URL), not SQLite")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--keep", action="store_true", help="keep the stack's temp dir (logs, databases)")
    args = ap.parse_args()
    if args.launches < 2 or args.rounds < 1:
        ap.error("--launches must be at least 2, --rounds at least 1")
    _signals_interrupt()

    base = Path(tempfile.mkdtemp(prefix="bench-push-latency-"))
    stack = standin = control = bare_runner = None
    pg_dbs: list[str] = []
    samples: list[Sample] = []
    calls_per_pass: list[int] = []
    try:
        store_url = None
        if args.postgres:
            suffix = uuid.uuid4().hex[:8]
            pg_dbs = [f"bench_prefect_{suffix}", f"bench_store_{suffix}"]
            with pg_admin() as conn:
                for db in pg_dbs:
                    conn.execute(f'CREATE DATABASE "{db}"')
            store_url = pg_url(pg_dbs[1], "postgresql+psycopg")
        stack = Stack(base, store_url=store_url)
        if args.postgres:
            stack.env["PREFECT_API_DATABASE_CONNECTION_URL"] = pg_url(pg_dbs[0], "postgresql+asyncpg")
        wechat = stack.enable_wechat()
        standin, platform_env = start_standin(wechat)
        stack.env.update(platform_env)
        stack.env.update({"WEAPP_LAUNCH_WATCH_INTERVAL_SECONDS": "0",  # only the passes this bench runs
                          "PREFECT_LOGGING_LEVEL": "WARNING"})
        t0 = time.perf_counter()
        stack.start_server()
        stack.apply_env()
        from tests.support.stack import stack_resources

        res = stack_resources()
        res.store  # migrate before the runner's processes open it
        stack.start_runner()
        receiver = stack.start_api()
        bare_runner = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "bare_flow.py")], env=stack.env, cwd=ROOT,
            stdout=(base / "bare.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        control = Control(standin.url)
        control.post("ticket")  # WeChat's component_verify_ticket, through the receiver
        wait_bare_deployment(120)
        setup = time.perf_counter() - t0
        print(f"stack up in {setup:.1f} s: Prefect {stack.api_url}, receiver {receiver}, stand-in {standin.url}"
              f"{' (PostgreSQL)' if args.postgres else ' (SQLite)'}", flush=True)

        launches = prepare(res, control, args.launches, args.rounds)
        print(f"parking {args.launches} launches at {GATE}-1 (window {args.window})…", flush=True)
        park_s = park_launches(res, launches, args.window, args.timeout, stack.api_url)
        n_bare = (args.launches + 1) // 2
        bare_ids = start_bare(n_bare, args.rounds, 300, stack.api_url)
        print(f"parked in {park_s:.1f} s; {n_bare} bare runs parked; sampling {args.rounds} rounds…", flush=True)

        for r in range(args.rounds):
            attempt = r + 1
            for i, launch in enumerate(launches):
                quiet(stack.api_url, 300)
                wait_until(f"{launch.launch_id} parked at {GATE}-{attempt}",
                           lambda: parked_at(launch.run_id, f"{GATE}-{attempt}"), 300, 0.3)
                if (i + r) % 2 == 0:
                    ours = sample_push(res, control, launch, attempt, 300)
                else:
                    ours, calls = sample_poll(res, control, launch, attempt, 300)
                    calls_per_pass.append(calls)
                samples.append(ours)
                line = f"  round {attempt} launch {i + 1}: {ours.path} {ours.total * 1000:.0f} ms"
                if i % 2 == 1 or i == len(launches) - 1:
                    j = i // 2
                    quiet(stack.api_url, 300)
                    wait_until(f"bare run parked at gate-{r}", lambda: parked_at(bare_ids[j], f"gate-{r}"), 300, 0.3)
                    samples.append(sample_bare(bare_ids[j], r, 300))
                    line += f"; bare {samples[-1].total * 1000:.0f} ms"
                print(line, flush=True)
        quiet(stack.api_url, 300)

        # Every gate attempt sampled was decided exactly once, by its path's channel.
        for launch in launches:
            decided = [d for d in res.store.history(launch.launch_id) if d.gate == GATE]
            for attempt, path in launch.samples:
                mine = [d for d in decided if d.attempt == attempt]
                want = "wechat" if path == "push" else "wechat-api"
                assert len(mine) == 1 and mine[0].channel == want, (launch.launch_id, attempt, path, mine)
            assert len(decided) == len(launch.samples), (launch.launch_id, len(decided), launch.samples)
        report(args, samples, calls_per_pass, park_s)
    except BaseException:
        if stack is not None:
            diagnose(stack, locals().get("launches") or [])
        raise
    finally:
        if control is not None:
            control.close()
        if bare_runner is not None:
            stop_group(bare_runner)
        if stack is not None:
            stack.stop()
        if standin is not None:
            standin.stop()
        from tests.support.stack import close_resources

        close_resources()
        if pg_dbs:
            with pg_admin() as conn:
                for db in pg_dbs:
                    conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def diagnose(stack: Stack, launches: list[Launch]) -> None:
    """On a failure: where each launch's filing run is, and the runner's log tail."""
    try:
        from tests.support.stack import stack_resources

        store = stack_resources().store
        for launch in launches:
            waiting = [f"{s.step}#{s.attempt}" for s in store.steps_for(launch.launch_id) if s.status == "waiting"]
            state = states(launch.run_id)[-1] if launch.run_id else None
            print(f"  {launch.launch_id}: waiting {waiting}; filing run "
                  f"{state.name if state else '-'} {state.message or '' if state else ''}"[:400], file=sys.stderr)
        print(stack.runner_log.read_text()[-4000:], file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - diagnostics only
        print(f"(diagnostics failed: {exc!r})", file=sys.stderr)


def report(args, samples: list[Sample], calls_per_pass: list[int], park_s: float) -> None:
    by = {p: [s for s in samples if s.path == p] for p in ("push", "poll", "bare")}
    bare = [s.total for s in by["bare"]]
    b50, b95 = pct(bare, 50), pct(bare, 95)

    def ms(x: float) -> str:
        return f"{x * 1000:7.0f} ms"

    def secs(pairs) -> list[float]:
        return [(b - a).total_seconds() for a, b in pairs]

    print()
    print(f"{GATE}: {args.launches} launches × {args.rounds} rounds on "
          f"{'PostgreSQL' if args.postgres else 'SQLite'} (parking took {park_s:.0f} s); a shared 2-core "
          "machine: noisy")
    print(f"{'':44s} {'n':>3s} {'p50':>10s} {'p95':>10s} {'max':>10s}   p50/bare  p95/bare")
    labels = {"push": "push: inbox row written → RUNNING",
              "poll": "poll: watcher pass start → RUNNING",
              "bare": "bare: resume_flow_run() → RUNNING"}
    for path in ("push", "poll", "bare"):
        xs = [s.total for s in by[path]]
        ratio = "" if path == "bare" else f"   {pct(xs, 50) / b50:6.2f}×   {pct(xs, 95) / b95:6.2f}×"
        print(f"{labels[path]:44s} {len(xs):3d} {ms(pct(xs, 50))} {ms(pct(xs, 95))} {ms(max(xs))}{ratio}")
    print("where the time goes (p50):")
    push, poll = by["push"], by["poll"]
    sent = [s for s in push if s.sent is not None]
    if sent:
        print(f"  push: stand-in made the push → inbox row  {ms(pct(secs((s.sent, s.start) for s in sent), 50))}"
              "  (encrypt, HTTP, verify, durable write)")
    print(f"  push: inbox row → decision recorded       {ms(pct(secs((s.start, s.decided) for s in push), 50))}"
          "  (the receiver's applier)")
    print(f"  poll: pass start → decision recorded      {ms(pct(secs((s.start, s.decided) for s in poll), 50))}"
          f"  (a repair pass: inbox, revive, resumes, joins, then {pct(calls_per_pass, 50):.0f} WeChat calls)")
    for path in ("push", "poll"):
        xs = by[path]
        print(f"  {path}: decision → Prefect has the resume   {ms(pct(secs((s.decided, s.resumed) for s in xs), 50))}")
    print(f"  bare: resume_flow_run() → Prefect has it  {ms(pct(secs((s.start, s.resumed) for s in by['bare']), 50))}")
    for path in ("push", "poll", "bare"):
        xs = by[path]
        print(f"  {path}: resume → RUNNING (runner poll, process start) "
              f"{ms(pct(secs((s.resumed, s.running) for s in xs), 50))}")


if __name__ == "__main__":
    main()
