"""The ICP filing branch: materials, face verification, submission, first review, 12381 SMS, bureau.

The order is WeChat's (create_icp_verifytask, 注意事项; shared/domain.md "ICP filing"):
every other material ready (`filing-materials`) → the face-verification task created and
the admin notified (`face-verification`: the notice lives 24 hours) → the filing submitted,
carrying the task's id (`filing-submission`) → first review → SMS (24 hours) → bureau.

Loops:
- a failed face check: the gate again (a new attempt, a new 24-hour notice);
- a first-review rejection, an SMS rejection (fields must change) or a bureau rejection:
  fix and resubmit (`filing-submission` again), first review again. Before that submission
  the face task is checked: WeChat's verify task lives 3 days, so an older one is redone
  (`face-verification` again) and a fresh one is reused;
- an SMS timeout or five wrong entries: the filing is back on the platform; staff resubmit
  (`filing-resubmission`) and only then does a new SMS arrive, with a new 24-hour window
  (`sms-verification` again).
Every retry is a new attempt of its gate, with its own key. Every choice read from the store
is a cached task, so a replay takes the same path.
"""

from __future__ import annotations

from collections import Counter

from prefect import flow

from flows.gate import pass_gate
from tasks.branches import branch_completed_hook, branch_failed_hook, finish_branch
from tasks.filing import face_task_still_valid
from tasks.gates import launch_info


@flow(
    name="filing",
    persist_result=True,
    on_completion=[branch_completed_hook],
    on_failure=[branch_failed_hook],
    on_crashed=[branch_failed_hook],
)
def filing(launch_id: str, branch: str = "filing", attempt: int = 1) -> str:
    info = launch_info(launch_id)
    n: Counter[str] = Counter()

    def gate(gate_id: str):
        n[gate_id] += 1
        return pass_gate(info, gate_id, n[gate_id])

    def face_check() -> None:
        while not gate("face-verification").passed:
            pass  # failed: the admin tries again on a new task (a new 24-hour notice)

    gate("filing-materials")
    face_check()

    while True:
        submission = n["filing-submission"] + 1
        if submission > 1 and not face_task_still_valid(launch_id, n["face-verification"], submission):
            face_check()  # the 3-day verify task has expired: a new one before resubmitting
        gate("filing-submission")
        if not gate("first-review").passed:
            continue  # fix what the platform rejected, resubmit
        sms = gate("sms-verification")
        while sms.outcome == "timed_out":
            gate("filing-resubmission")  # back on the platform: staff resubmit first …
            sms = gate("sms-verification")  # … then a new SMS, a new 24-hour window
        if sms.outcome == "rejected":
            continue
        if gate("bureau-review").passed:
            break
        # the bureau's reasons fixed: resubmit (loop)

    finish_branch(launch_id, branch)
    return "filed"
