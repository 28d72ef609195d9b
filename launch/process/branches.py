"""The branch flows: ICP filing, design, implementation, content. Each is a flow run of its
own (a run waits at one place at a time, and these wait independently of the launch)."""

from __future__ import annotations

from collections import Counter

from launch.app.views import DecisionView
from launch.domain.forms import SMS_REJECTED, SMS_TIMED_OUT
from launch.process.gate import pass_gate
from launch.process.ports import Steps


def filing(steps: Steps, launch_id: str, branch: str = "filing", attempt: int = 1) -> str:
    """ICP filing: materials, face verification, submission, first review, 12381 SMS, bureau.

    The order is WeChat's (create_icp_verifytask, 注意事项): every other material ready
    (`filing-materials`) → the face-verification task created and the admin notified
    (`face-verification`: the notice lives 24 hours) → the filing submitted, carrying the
    task's id (`filing-submission`) → first review → SMS (24 hours) → bureau.

    Loops:
    - a failed face check: the gate again (a new attempt, a new 24-hour notice);
    - a first-review rejection, an SMS rejection (fields must change) or a bureau rejection:
      fix and resubmit (`filing-submission` again), first review again. Before that submission
      the face task is checked: WeChat's verify task lives 3 days, so an older one is redone
      and a fresh one is reused;
    - an SMS timeout or five wrong entries: the filing is back on the platform; staff resubmit
      (`filing-resubmission`) and only then does a new SMS arrive, with a new 24-hour window.
    Every retry is a new attempt of its gate, with its own key; every choice read from the
    store is a cached activity, so a replay takes the same path.
    """
    info = steps.launch_info(launch_id)
    n: Counter[str] = Counter()

    def gate(gate_id: str) -> DecisionView:
        n[gate_id] += 1
        return pass_gate(steps, info, gate_id, n[gate_id])

    def face_check() -> None:
        while not gate("face-verification").passed:
            pass  # failed: the admin tries again on a new task (a new 24-hour notice)

    gate("filing-materials")
    face_check()
    while True:
        submission = n["filing-submission"] + 1
        if submission > 1 and not steps.face_task_still_valid(launch_id, n["face-verification"], submission):
            face_check()  # the 3-day verify task has expired: a new one before resubmitting
        gate("filing-submission")
        if not gate("first-review").passed:
            continue  # fix what the platform rejected, resubmit
        sms = gate("sms-verification")
        while sms.outcome == SMS_TIMED_OUT:
            gate("filing-resubmission")  # back on the platform: staff resubmit first …
            sms = gate("sms-verification")  # … then a new SMS, a new 24-hour window
        if sms.outcome == SMS_REJECTED:
            continue
        if gate("bureau-review").passed:
            break
        # the bureau's reasons fixed: resubmit (loop)
    steps.finish_branch(launch_id, branch)
    return "filed"


def design(steps: Steps, launch_id: str, branch: str = "design", attempt: int = 1) -> str:
    info = steps.launch_info(launch_id)
    round_ = 1
    while True:
        pass_gate(steps, info, "design-draft", round_)
        if pass_gate(steps, info, "design-confirmation", round_).passed:
            break
        round_ += 1  # the client asked for rework: a new draft
    steps.finish_branch(launch_id, branch)
    return "confirmed"


def implementation(steps: Steps, launch_id: str, branch: str = "implementation-1", attempt: int = 1) -> str:
    """attempt 1 builds from the approved design; later attempts fix a failed code review."""
    info = steps.launch_info(launch_id)
    pass_gate(steps, info, "implementation", attempt)
    steps.finish_branch(launch_id, branch)
    return "implemented"


def content(steps: Steps, launch_id: str, branch: str = "content", attempt: int = 1) -> str:
    info = steps.launch_info(launch_id)
    pass_gate(steps, info, "content", attempt)
    steps.finish_branch(launch_id, branch)
    return "filled"


# flow name (the catalogue's `branch`, and the launch's own) -> body
BODIES = {"filing": filing, "design": design, "implementation": implementation, "content": content}
