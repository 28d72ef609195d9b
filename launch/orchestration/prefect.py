"""The Prefect side of the house for callers outside flows: start a launch, resume a gate, read a run.

The CLI, the callback receiver and the deadline watcher use this; flows and tasks
never do (they are already inside Prefect).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from launch.orchestration.names import LAUNCH, deployment_of
from launch.orchestration.port import Revived, RunState


FORM_NOT_SAVED = "Run input schema not found"  # Prefect's refusal while a parked run's form is being saved
FORM_SAVE_SECONDS = 10.0
REPLAY_MESSAGE = "停在关卡但表单未保存，重放以采用已登记的决定 / parked without its form: replayed to take the recorded decision"


def form_saved(flow_run_id: str) -> bool:
    """Whether a run parked for input has its Resume form (input schema) saved yet."""
    from prefect.input.run_input import keyset_from_paused_state

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
        if run.state is None or not run.state.is_paused():
            return False
        try:
            client.read_flow_run_input(run.id, keyset_from_paused_state(run.state)["schema"])
        except Exception:  # noqa: BLE001 - 404 until the engine has written it
            return False
    return True


def ui_url(flow_run_id: str | None, base_url: str | None = None) -> str:
    if not flow_run_id:
        return ""
    if base_url is None:
        from launch.settings import get_settings

        base_url = get_settings().prefect_ui_url
    return f"{base_url.rstrip('/')}/runs/flow-run/{flow_run_id}"


def start_launch_run(launch_id: str) -> str:
    """Create the launch's flow run (exactly once per launch id) and return its id."""
    return start_run(LAUNCH, {"launch_id": launch_id}, f"launch-{launch_id}", tags=["weapp-launch", launch_id])


def start_branch_run(launch_id: str, branch: str, flow_name: str, parameters: dict) -> str:
    """Create a branch's flow run (exactly once per launch and branch) and return its id."""
    return start_run(
        deployment_of(flow_name), parameters, f"{launch_id}-{branch}", tags=["weapp-launch", launch_id]
    )


def start_run(deployment: str, parameters: dict, idempotency_key: str, tags: list[str]) -> str:
    from prefect.deployments import run_deployment

    run = run_deployment(
        deployment, parameters=parameters, timeout=0, as_subflow=False, idempotency_key=idempotency_key, tags=tags
    )
    return str(run.id)


def read_state(flow_run_id: str) -> RunState | None:
    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(UUID(flow_run_id))
        except ObjectNotFound:
            return None
    state = run.state
    if state is None:
        return RunState(flow_run_id, "PENDING", "Pending", None)
    return RunState(
        flow_run_id,
        state.type.value,
        state.name or state.type.value,
        getattr(state.state_details, "pause_key", None),
    )


def replay_parked(flow_run_id: str, key: str) -> bool:
    """Reschedule a run parked at `key` so it replays from its cached results; True when done."""
    from prefect.states import Scheduled

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
        if run.state is None or not run.state.is_paused() or run.state.state_details.pause_key != key:
            return False
        client.set_flow_run_state(run.id, Scheduled(message=REPLAY_MESSAGE), force=True)
    return True


def resume_if_parked(flow_run_id: str, key: str, run_input: dict | None = None, wait_seconds: float = 0.0) -> bool:
    """Resume the run if it is parked at `key`; True when resumed.

    A run that is not parked there yet is left alone: the gate reads the store
    before it suspends, so the decision is not lost. `wait_seconds` covers the short
    moment between a gate opening in the store and the run actually parking.

    `run_input` is what Prefect keeps as the gate's Resume answer: its free text (who
    decided, notes, reasons) is scrubbed here, whoever the caller, since the gate takes
    the decision from the store (recorded first, as typed) and not from this input.
    """
    from prefect.flow_runs import resume_flow_run

    from launch.domain.masking import scrub_form_data

    if run_input is not None:
        run_input = scrub_form_data(run_input)

    deadline = time.monotonic() + wait_seconds
    form_deadline = None
    while True:
        state = read_state(flow_run_id)
        if state is not None and state.parked and state.pause_key == key:
            try:
                resume_flow_run(UUID(flow_run_id), run_input=run_input)
                return True
            except RuntimeError as exc:
                if FORM_NOT_SAVED not in str(exc):
                    # Someone else resumed it first, or the server refused: the store has the decision.
                    return False
                # Prefect parks a run first and saves its Resume form a moment later; a resume in
                # that moment is refused, so it is retried for a while.
                form_deadline = form_deadline or time.monotonic() + FORM_SAVE_SECONDS
                if time.monotonic() < form_deadline:
                    time.sleep(0.1)
                    continue
                # Still no form: its process died between parking and saving it, and Prefect
                # will refuse every resume. The decision is in the store (callers record it
                # first), so a replay takes it at the gate without parking.
                return replay_parked(flow_run_id, key)
        if state is None or state.state_type != "RUNNING" or time.monotonic() >= deadline:
            # Not on its way to this gate right now: scheduled or pending runs read the store
            # when they reach it; anything else is the watcher's to repair.
            return False
        time.sleep(0.25)


HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"
REVIVED_MESSAGE = "进程已失联，重新调度 / the run's process died; rescheduled to replay"


def _last_heartbeat(client, flow_run_id: UUID, since: datetime, until: datetime) -> datetime | None:
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter

    page = client.read_events(
        filter=EventFilter(
            occurred=EventOccurredFilter(since=since, until=until),
            event=EventNameFilter(name=[HEARTBEAT_EVENT]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
        ),
        limit=1,  # newest first
    )
    return page.events[0].occurred if page.events else None


def revive_dead_runs(flow_run_ids: list[str], silent_seconds: float, now: datetime | None = None) -> list[Revived]:
    """Reschedule those of these runs that are RUNNING but whose process died, so a live
    runner or worker replays them (finished tasks load from their results).

    Dead means: RUNNING for longer than `silent_seconds` and no heartbeat for as long,
    though this run did send heartbeats in its current RUNNING state (a run without
    heartbeats cannot be told from a slow one and is left alone). The state is read
    again just before the change, which applies only if the run is still in that state.

    Prefect's own recipe, an automation that changes the state when heartbeats stop,
    fires on live and parked runs when the server misses the closing event (seen here
    under load on SQLite, and upstream: PrefectHQ/prefect#18653, #21932); so the
    automation only asks for a check (deployments/serve.py) and this decides.
    """
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.states import Scheduled

    if not flow_run_ids:
        return []
    now = now or datetime.now(timezone.utc)
    revived: list[Revived] = []
    with get_client(sync_client=True) as client:
        running = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[UUID(i) for i in flow_run_ids]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING])),
            ),
            limit=len(flow_run_ids),
        )
        for run in running:
            since = run.state.timestamp
            if (now - since).total_seconds() < silent_seconds:
                continue
            beat = _last_heartbeat(client, run.id, since, now)
            if beat is None:
                continue
            silent = (now - beat).total_seconds()
            if silent < silent_seconds:
                continue
            current = client.read_flow_run(run.id)
            if current.state is None or current.state.id != run.state.id:
                continue  # it moved on while we looked
            client.set_flow_run_state(run.id, Scheduled(message=REVIVED_MESSAGE), force=True)
            revived.append(Revived(str(run.id), run.name, silent))
    return revived


def forget_form_answers(flow_run_id: str, gate_key: str) -> int:
    """Delete the answers Prefect kept for this gate's Resume forms (`<key>`, `<key>-retry-N`):
    a form typed in the Prefect UI holds what staff typed, as typed. Returns how many."""
    import re

    import httpx

    base = f"suspended-{gate_key}"  # Prefect's keyset: "<state name>-<pause key>-response"
    answer = re.compile(rf"{re.escape(base)}(?:-retry-\d+)?-response")
    deleted = 0
    with get_client(sync_client=True) as client:
        found = client.filter_flow_run_input(UUID(flow_run_id), key_prefix=base, limit=200, exclude_keys=set())
        for item in found:
            if not answer.fullmatch(item.key):
                continue
            try:
                client.delete_flow_run_input(UUID(flow_run_id), item.key)
                deleted += 1
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 404:  # gone already is what we wanted
                    raise
    return deleted


def publish_artifacts(flow_run_id: str | None, artifacts: list[dict]) -> None:
    """Create (a new version of) each artifact, on the run when given: dicts of key, type, data,
    description."""
    from prefect.client.schemas.actions import ArtifactCreate

    run = UUID(flow_run_id) if flow_run_id else None
    with get_client(sync_client=True) as client:
        for artifact in artifacts:
            client.create_artifact(ArtifactCreate(flow_run_id=run, **artifact))


def latest_artifact_at(key: str) -> datetime | None:
    """When the newest version of the artifact `key` was created; None if there is none."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC, limit=1,
        )
    return found[0].created if found else None


class PrefectOrchestrator:
    """The orchestrator port over Prefect's API (the client reads PREFECT_API_URL and its auth)."""

    def __init__(self, settings=None) -> None:
        self._ui_base = settings.prefect_ui_url if settings is not None else None

    start_launch_run = staticmethod(start_launch_run)
    start_branch_run = staticmethod(start_branch_run)
    read_state = staticmethod(read_state)
    resume_if_parked = staticmethod(resume_if_parked)
    replay_parked = staticmethod(replay_parked)
    revive_dead_runs = staticmethod(revive_dead_runs)
    form_saved = staticmethod(form_saved)
    forget_form_answers = staticmethod(forget_form_answers)
    publish_artifacts = staticmethod(publish_artifacts)
    latest_artifact_at = staticmethod(latest_artifact_at)

    def ui_url(self, flow_run_id: str | None) -> str:
        return ui_url(flow_run_id, self._ui_base)
