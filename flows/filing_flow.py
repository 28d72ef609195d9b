"""The ICP filing branch: submission, face verification, first review, 12381 SMS, bureau review.

Loops follow domain.md: a first-review rejection means fix and resubmit; an SMS
timeout (or five wrong entries) means resubmit and a new SMS; an SMS rejection
(fields must change) and a bureau rejection send the filing back through first
review. Every retry is a new attempt of its gate, with its own key.
"""

from __future__ import annotations

from collections import Counter

from prefect import flow

from flows.gate import pass_gate
from tasks.branches import branch_completed_hook, branch_failed_hook, finish_branch
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

    gate("filing-submission")
    while not gate("face-verification").passed:
        pass  # a failed face check: the admin tries again (a new verify task)

    while True:
        if not gate("first-review").passed:
            gate("filing-submission")  # fix what the platform rejected, resubmit
            continue
        sms = gate("sms-verification")
        while sms.outcome == "timed_out":
            sms = gate("sms-verification")  # resubmitted: a new SMS, a new 24-hour window
        if sms.outcome == "rejected":
            gate("filing-submission")
            continue
        if gate("bureau-review").passed:
            break
        gate("filing-submission")  # the bureau's reasons fixed, resubmitted

    finish_branch(launch_id, branch)
    return "filed"
