"""One full launch, every gate answered at once, against a bare Prefect flow with the
same number of tasks and suspends — both on the same local server, in one run.

    .venv/bin/python bench/bench_launch.py

Prints wall-clock for each and the ratio (aim: within 1.5x of the bare flow).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import UUID

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.stack import Stack  # noqa: E402


def count_work(run_ids: list[str]) -> tuple[int, int]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter

    tasks = suspends = 0
    with get_client(sync_client=True) as client:
        for rid in run_ids:
            states = client.read_flow_run_states(UUID(rid))
            suspends += sum(1 for s in states if s.name == "Suspended")
        runs, offset = [], 0
        while True:  # the API pages at 200
            page = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(r) for r in run_ids])),
                task_run_filter=TaskRunFilter(),
                limit=200,
                offset=offset,
            )
            runs += page
            if len(page) < 200:
                break
            offset += 200
        # Distinct task calls (a replay's cached re-visit is not new work).
        tasks = len({(r.flow_run_id, r.task_key, r.dynamic_key) for r in runs if r.state and r.state.name != "Cached"})
    return tasks, suspends


def run_ours() -> tuple[float, list[str]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    from launch.app.launches import start_launch
    from launch.app.preflight import add_client
    from devtools.simulator import Scenario, Simulator
    from tests.support.intakes import fresh_intake
    from tests.support.stack import stack_resources

    intake, _ = fresh_intake()
    res = stack_resources()  # this process plays the CLI, on the stack's environment
    client_id, _ = add_client(res, intake, res.now().date())
    t0 = time.perf_counter()
    started = start_launch(res, client_id)
    sim = Simulator(started["launch_id"], Scenario(), res=res)
    assert sim.run(900, interval=0.1), "launch did not finish"
    elapsed = time.perf_counter() - t0
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[started["launch_id"]]))
        )
    return elapsed, [str(r.id) for r in runs]


def run_bare(tasks: int, suspends: int) -> float:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.flow_runs import resume_flow_run

    t0 = time.perf_counter()
    run = run_deployment("bare/bench", parameters={"tasks": tasks, "suspends": suspends}, timeout=0)
    while True:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(run.id).state
        if state.is_final():
            break
        if state.is_paused():
            try:
                resume_flow_run(run.id, run_input={"decided_by": "bench"})
            except RuntimeError:
                pass
        time.sleep(0.1)
    assert state.is_completed(), state
    return time.perf_counter() - t0


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-launch-"))
    stack = Stack(base)
    bare_server = None
    try:
        stack.start_server()
        stack.apply_env()
        stack.start_runner()
        bare_server = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "bare_flow.py")], env=stack.env, cwd=ROOT,
            stdout=(base / "bare.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        time.sleep(8)
        ours, run_ids = run_ours()
        tasks, suspends = count_work(run_ids)
        bare = run_bare(tasks, suspends)
        print(f"launch (weapp-launch): {ours:7.1f} s  — {len(run_ids)} flow runs, {tasks} tasks, {suspends} suspends")
        print(f"bare Prefect flow:     {bare:7.1f} s  — 1 flow run, {tasks} tasks, {suspends} suspends")
        print(f"ratio ours/bare:       {ours / bare:7.2f}x  (aim: <= 1.5x)")
    finally:
        if bare_server and bare_server.poll() is None:
            import os
            import signal

            os.killpg(bare_server.pid, signal.SIGTERM)
        stack.stop()


if __name__ == "__main__":
    main()
