"""The launch's activities as Prefect tasks: one line each, over the Activities they are given.

Which activity a replay loads instead of running again, and how often a failure is retried,
is read from `launch.process.ports.ACTIVITIES` (said once there). Cached tasks use Prefect's
default policy (inputs + source + flow run id) with persisted results, so a resumed flow body
that replays from the top loads them; reads use NO_CACHE, since a replay must see the store as
it is now. The writes behind them are idempotent, so retries and a crash between a write and
its result being persisted change nothing.
"""

from __future__ import annotations

from prefect import Task, task
from prefect.cache_policies import DEFAULT, NO_CACHE

from launch.app.activities import Activities
from launch.process.ports import ACTIVITIES


def build_tasks(activities: Activities) -> dict[str, Task]:
    return {
        spec.name: task(
            getattr(activities, spec.name),
            name=spec.name.replace("_", "-"),
            retries=spec.retries,
            retry_delay_seconds=2,
            cache_policy=DEFAULT if spec.cached else NO_CACHE,
            persist_result=spec.cached,
        )
        for spec in ACTIVITIES.values()
    }
