"""The bare-Prefect baseline: a flow with N tasks and M suspends, nothing else."""

from __future__ import annotations

from prefect import flow, task
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput


class Ack(RunInput):
    decided_by: str


@task
def step(i: int) -> int:
    return i


@flow(name="bare", persist_result=True)
def bare(tasks: int, suspends: int) -> int:
    per_gap = max(tasks // max(suspends, 1), 1)
    done = 0
    for s in range(suspends):
        for _ in range(per_gap):
            if done < tasks:
                step(done)
                done += 1
        suspend_flow_run(wait_for_input=Ack, key=f"gate-{s}", timeout=3600)
    while done < tasks:
        step(done)
        done += 1
    return done


if __name__ == "__main__":
    bare.serve(name="bench")
