"""The fault suite's shared pieces: a private PostgreSQL that a test may kill and restart, a
stack on it, helpers that park launches where a scenario wants them, and the figures reporter.

Figures. A test asks for ``figures`` and records rows of what it measured
(``figures.add("server SIGKILL", parked=3, resumed=3, ...)``); they travel on the test report
(``user_properties``, so they reach the pytest-xdist controller too) and are printed as one
table at the end of the session by ``pytest_terminal_summary`` — wherever this conftest is
loaded in the process that prints the summary (``pytest tests/faults``, with or without
``-n``). In a whole-suite run under xdist the controller loads only ``tests/conftest.py``:
importing ``pytest_runtest_logreport`` and ``pytest_terminal_summary`` from
``tests.faults.reporter`` there prints the table too (see tests/faults/reporter.py). Every
session also writes the table to ``test-artifacts/faults-figures.txt``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.faults.reporter import (  # noqa: F401  (hooks: pytest registers them from this conftest)
    FIGURES_PROPERTY,
    pytest_runtest_logreport,
    pytest_terminal_summary,
)
from tests.support.stack import ROOT, Stack, close_resources, free_port, refresh_in_process_settings, stack_resources
from tests.support.wait import wait_for  # noqa: F401  (the scenarios' wait loop)

PG_BINDIR = Path(os.environ.get("WEAPP_LAUNCH_TEST_PG_BINDIR", "/usr/lib/postgresql/15/bin"))


# ---------------------------------------------------------------- figures


class Figures:
    """Rows of figures of one test: each a scenario name and its numbers / short strings."""

    def __init__(self, node):
        self.node = node

    def add(self, scenario: str, **values) -> None:
        row = {"scenario": scenario, **{k: (round(v, 1) if isinstance(v, float) else v) for k, v in values.items()}}
        self.node.user_properties.append((FIGURES_PROPERTY, row))


@pytest.fixture
def figures(request) -> Figures:
    return Figures(request.node)


# ---------------------------------------------------------------- a private PostgreSQL


class PrivatePostgres:
    """A PostgreSQL cluster of our own in a temp dir: the tests may kill and restart it
    without touching the machine's shared server (the scale test uses that one meanwhile).

    initdb refuses to run as root: as root, the cluster is created and run as the
    ``postgres`` system user (``runuser``) in a temp dir that user owns."""

    def __init__(self, bindir: Path = PG_BINDIR):
        self.bindir = Path(bindir)
        self.base = Path(tempfile.mkdtemp(prefix="weapp-faults-pg-"))
        self.data = self.base / "data"
        self.sockets = self.base / "sockets"
        self.log = self.base / "postgres.log"
        self.port = free_port()
        self.as_user = None
        if os.geteuid() == 0:
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and no `postgres` user to run initdb as") from None
            self.as_user = "postgres"
            self.sockets.mkdir()
            for path in (self.base, self.sockets):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        else:
            self.sockets.mkdir()

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.base)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} exited {done.returncode}: {done.stdout[-2000:]} "
                               f"{done.stderr[-2000:]} {self.log.read_text()[-2000:] if self.log.exists() else ''}")
        return done

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
                  "--locale=C.UTF-8")

    def start(self) -> float:
        """Start the server and wait until it accepts connections; returns the seconds it took."""
        t0 = time.perf_counter()
        opts = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                "-c fsync=off -c shared_buffers=32MB")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")
        return time.perf_counter() - t0

    def stop(self, mode: str = "fast") -> float:
        """pg_ctl stop; "immediate" is a crash: no checkpoint, every session cut, recovery on start."""
        t0 = time.perf_counter()
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        return time.perf_counter() - t0

    def running(self) -> bool:
        cmd = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"]
        if self.as_user:
            cmd = ["runuser", "-u", self.as_user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True).returncode == 0

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres", **kwargs):
        import psycopg

        return psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/{database}", connect_timeout=5,
                               **kwargs)

    def create_database(self, name: str) -> str:
        with self.connect(autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def lock_waiters(self, database: str) -> int:
        """Sessions of `database` waiting for a lock right now."""
        with self.connect(autocommit=True) as conn:
            return conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", (database,)
            ).fetchone()[0]

    def destroy(self) -> None:
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def _pg_missing() -> str | None:
    missing = [b for b in ("initdb", "pg_ctl", "postgres") if not (PG_BINDIR / b).exists()]
    if missing:
        return (f"PostgreSQL binaries not found in {PG_BINDIR} ({', '.join(missing)} missing; "
                "WEAPP_LAUNCH_TEST_PG_BINDIR points elsewhere): the fault suite runs its own PostgreSQL")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without `runuser`: initdb refuses root and cannot be run as the postgres user"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed"
    return None


@pytest.fixture(scope="session")
def private_pg():
    reason = _pg_missing()
    if reason:
        pytest.skip(reason)
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.destroy()


# ---------------------------------------------------------------- a stack on it


@contextmanager
def stack_on(base: Path, store_url: str, *, wechat: bool = False, extra_env: dict[str, str] | None = None):
    """A Stack (server, runner; receiver if `wechat`) whose store is `store_url`, with this
    process pointed at it; the process environment is put back afterwards (the session
    stack of tests/conftest.py may run again after this module)."""
    saved = dict(os.environ)
    s = Stack(base, store_url=store_url)
    # No scheduled watcher: the passes the tests start are the only ones (as in tests/conftest.py).
    s.env["WEAPP_LAUNCH_WATCH_INTERVAL_SECONDS"] = "0"
    s.env.update(extra_env or {})
    if wechat:
        s.enable_wechat()
    try:
        s.start_server()
        s.apply_env()
        stack_resources().store  # migrate the store once, before any flow-run process opens it
        s.start_runner()
        if wechat:
            s.start_api()
        yield s
    finally:
        s.stop()
        close_resources()
        os.environ.clear()
        os.environ.update(saved)
        refresh_in_process_settings()  # back to the session stack, if one runs
        if not os.environ.get("WEAPP_LAUNCH_KEEP_STACK"):
            shutil.rmtree(base / "results", ignore_errors=True)


def sigkill_group(proc: subprocess.Popen | None, timeout: float = 20) -> None:
    """SIGKILL a stack process with every process of its group (as when its machine dies)."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout)


@pytest.fixture(scope="module")
def sinks():
    """Real alert sinks for a module: an aiosmtpd SMTP server and a loopback HTTP "SMS gateway"."""
    from tests.notifiers.conftest import HttpEndpoint, SmtpServer

    smtp, http = SmtpServer(), HttpEndpoint()
    smtp.start()
    http.start()
    try:
        yield smtp, http
    finally:
        http.stop()
        smtp.stop()


# ---------------------------------------------------------------- scenarios chained on one stack


class Chain:
    """What the scenarios of one module hand on to each other: its stack, its database and
    the launches they carry along. A module defines a ``chain`` fixture returning one."""

    def __init__(self, stack, pg=None, database: str | None = None):
        self.stack, self.pg, self.database = stack, pg, database
        self.launches: list[tuple[str, str, dict]] = []  # (launch id, flow run id, app ids)
        self.broken: str | None = None

    def require(self) -> None:
        if self.broken:
            pytest.skip(f"an earlier scenario of this module failed ({self.broken}): its launches are not "
                        "where this one starts")


@contextmanager
def chain_on(pg: PrivatePostgres, base: Path, name: str, notifiers: str, *, wechat: bool = False):
    """A module's Chain: a stack whose store is a new database `name_<random>` of the suite's
    PostgreSQL, with `notifiers` (YAML or JSON) as its notifiers file (`chain.notifiers`)."""
    path = base / "notifiers.yaml"
    path.write_text(notifiers, encoding="utf-8")
    database = f"{name}_{uuid.uuid4().hex[:8]}"
    url = pg.create_database(database)
    with stack_on(base, url, wechat=wechat, extra_env={"WEAPP_LAUNCH_NOTIFIERS_FILE": str(path)}) as stack:
        c = Chain(stack, pg, database)
        c.notifiers = path
        yield c


@pytest.fixture
def scenario(chain, request):
    """The module's chain, for a scenario that continues from the previous one; a failed
    scenario marks the chain broken so the next ones skip instead of timing out."""
    chain.require()
    failed_before = request.session.testsfailed
    yield chain
    if request.session.testsfailed > failed_before:
        chain.broken = request.node.name


# ---------------------------------------------------------------- launches


def launch_gates(launch_id: str) -> list[str]:
    res = stack_resources()
    store, cat = res.store, res.catalogue
    launch = store.get_launch(launch_id)
    client = store.get_client(launch.client_id)
    return [g.id for g in cat.gates_for(launch.registration_path, client.subject_type)]


ONLY_AFTER_A_FAILURE = {"filing-resubmission"}  # opens only after a timeout or rejection: nothing to pre-decide


def new_parked_launch(open_gates: set[str], actor: str = "批量员工") -> tuple[str, str, dict]:
    """A launch whose every gate but `open_gates` and release has its passing decision recorded
    before the run starts (so it takes them without parking), then started; returns
    (launch id, flow run id, the app ids its subject-info carries). Each launch gets its own
    app id and original id, so pushes find it."""
    from devtools.simulator import PASSING
    from launch.app.decisions import submit_decision
    from launch.app.launches import start_launch
    from launch.app.preflight import add_client
    from tests.flows.helpers import TODAY
    from tests.support.intakes import fresh_intake

    res = stack_resources()
    store = res.store
    intake, _ = fresh_intake()
    client_id, _ = add_client(res, intake, TODAY)
    launch = store.create_launch(client_id)
    ids = {"appid": "wx" + uuid.uuid4().hex[:16], "original_id": "gh_" + uuid.uuid4().hex[:12]}
    for gate in launch_gates(launch.id):
        if gate in open_gates or gate == "release" or gate in ONLY_AFTER_A_FAILURE or gate not in PASSING:
            continue
        data = {"decided_by": actor, **PASSING[gate]}
        if gate in ("subject-info", "fast-registration"):
            data.update(ids)
        result = submit_decision(res, launch.id, gate, data, "cli", attempt=1)
        assert result.status == "recorded", (gate, result)
    started = start_launch(res, client_id)
    assert started["launch_id"] == launch.id
    return launch.id, started["flow_run_id"], ids


def passing(gate: str, ids: dict | None = None, actor: str = "模拟员工") -> dict:
    from devtools.simulator import PASSING

    data = {"decided_by": actor, **PASSING[gate]}
    if ids and gate in ("subject-info", "fast-registration"):
        data.update(ids)
    return data


def run_to_release(launch_ids: list[str], timeout: float, *, hold: dict | None = None,
                   repair_every: float | None = 30) -> dict[str, float]:
    """Play every gate still open (the simulator's passing answers) until each launch is
    released; returns each launch's seconds to release. Fails with the open steps if not."""
    from devtools.simulator import Scenario, Simulator

    res = stack_resources()
    sims = {lid: Simulator(lid, Scenario(hold=hold or {}), repair_every=repair_every, res=res) for lid in launch_ids}
    t0 = time.monotonic()
    done: dict[str, float] = {}
    while time.monotonic() - t0 < timeout:
        for lid, sim in sims.items():
            if lid in done:
                continue
            sim.tick()
            if sim.released():
                done[lid] = time.monotonic() - t0
            else:
                sim._maybe_repair()
        if len(done) == len(sims):
            return done
        time.sleep(0.5)
    store = res.store
    open_steps = {lid: [(s.step, s.attempt, s.status) for s in store.steps_for(lid) if s.status != "done"]
                  for lid in launch_ids if lid not in done}
    raise AssertionError(f"{len(done)}/{len(sims)} launches released after {timeout}s; open steps: {open_steps}")


def effects_once(launch_id: str) -> tuple[int, list]:
    """(effects counted, those that ran other than once) from the store's effects ledger."""
    effects = stack_resources().store.effects_for(launch_id)
    return len(effects), [(e.effect_key, e.count) for e in effects if e.count != 1]


def decisions_per_attempt(launch_id: str) -> dict[tuple[str, int], int]:
    return dict(Counter((d.gate, d.attempt) for d in stack_resources().store.history(launch_id)))


_EXCEPTION_LINE = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception|Refused|Timeout))\b[:(]?", re.M)


def log_errors(path: Path, top: int = 3) -> str:
    """The exceptions a log names most (last lines of tracebacks, logged errors), as text."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "-"
    found = Counter(_EXCEPTION_LINE.findall(text))
    return ", ".join(f"{name} {n}" for name, n in found.most_common(top)) or "none"


def log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


__all__ = ["ROOT", "Chain", "chain_on", "wait_for", "Figures", "PrivatePostgres", "stack_on", "sigkill_group", "new_parked_launch", "passing",
           "run_to_release", "effects_once", "decisions_per_attempt", "launch_gates", "log_errors", "log_tail"]
