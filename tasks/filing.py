"""Tasks of the ICP filing branch that read the store to choose the next step.

Their answers steer the flow body, which replays from the top on every resume: each one
is cached (default policy: inputs + flow run id, persisted result), so a replay gets the
answer given the first time even when the store or the clock has moved on since.
"""

from __future__ import annotations

from prefect import task

from launch import runtime


@task
def face_task_still_valid(launch_id: str, face_attempt: int, before_submission: int) -> bool:
    """Is the face-verification task of ``face_attempt`` still usable for submission number
    ``before_submission``? WeChat's verify task lives 3 days from its creation (the moment the
    face gate opened; ``valid_for`` of the gate in the catalogue); an expired one is redone."""
    gate = runtime.catalogue().gate("face-verification")
    step = runtime.store().get_step(launch_id, "face-verification", face_attempt)
    if step is None or step.started_at is None:
        return False
    return not gate.result_expired(step.started_at, runtime.now())
