"""The launch: registration, the branches (filing, design, implementation, content), code
review and release — the order of steps only. Which gates exist, their forms and deadlines
and which phases run as branches come from the catalogue."""

from __future__ import annotations

from collections import Counter

from launch.app.views import DecisionView, LaunchInfo
from launch.process.gate import join_branch, pass_gate
from launch.process.ports import Steps

REGISTRATION = "registration"
PROFILE_GATE = "mini-program-profile"
VERIFICATION_GATE = "wechat-verification"
TRIAL_GATE = "trial-acceptance"
PLATFORM_GATE = "platform-registration"


def register(steps: Steps, info: LaunchInfo) -> None:
    """The registration phase: which gate, which attempt, in which order.

    * reuse path: the 公众号 admin authorises -> account/fastregister answers at once. Not
      registered ("failed") -> authorise again. "registered_unverified" (registered but 认证
      failed) -> the admin is bound, then ONLY the 认证 is done again (wechat-verification).
    * standalone path: email activation -> subject information -> 认证 (not for 个人).
    * platform path (platform_fast_registration): the tool creates WeChat's registration task
      and sends the client the legal person's authorisation link; WeChat's answer decides it.
      A failed or expired registration -> the gate again (attempt n+1: a new task, a new
      link). Then the 认证: accounts registered this way start unverified.
    * a failed 认证 reopens the 认证 gate alone (attempt n+1), never activation or subject info.
    * both paths end with the mini-program's profile (name, avatar, intro, categories), which
      the filing needs; a decision over WeChat's change limits is refused and asked again.
    """
    catalogue = steps.catalogue
    attempts: Counter[str] = Counter()

    def at(gate_id: str) -> DecisionView:
        attempts[gate_id] += 1
        return pass_gate(steps, info, gate_id, attempts[gate_id])

    def until_passed(gate_id: str) -> DecisionView | None:
        if gate_id not in catalogue.gates:  # switched off in this catalogue
            return None
        while not (decision := at(gate_id)).passed:
            pass
        return decision

    verification = catalogue.gates.get(VERIFICATION_GATE)
    needs_verification = verification is not None and info.subject_type not in verification.skip_for_subject_types
    if info.registration_path == "reuse_official_account":
        while True:
            until_passed("official-account-authorization")
            fast = at("fast-registration")
            if fast.passed:
                break
        until_passed("admin-binding")
        needs_verification = needs_verification and fast.outcome != "succeeded"
    elif info.registration_path == "platform_fast_registration":
        until_passed(PLATFORM_GATE)
    else:
        until_passed("email-activation")
        until_passed("subject-info")
    if needs_verification:
        until_passed(VERIFICATION_GATE)  # a failed 认证: resubmit the 认证 only
    if PROFILE_GATE in catalogue.gates:
        while True:
            at(PROFILE_GATE)
            if not steps.settle_profile(info.launch_id, attempts[PROFILE_GATE]):
                break


def launch(steps: Steps, launch_id: str) -> str:
    steps.bind_launch_run(launch_id)
    info = steps.launch_info(launch_id)
    register(steps, info)

    # Branch phases start once the phases they come after are done; a branch that a later
    # phase needs is joined (parked on until done) then. Filing waits on WeChat, MIIT and the
    # bureau for weeks, in parallel; design -> implementation -> content one after another.
    catalogue = steps.catalogue
    done = {REGISTRATION}
    running: dict[str, str] = {}  # phase -> branch run name, started and not yet joined

    def start(phase_id: str, attempt: int = 1) -> None:
        phase = catalogue.phases[phase_id]
        branch = phase.run_name(attempt)
        steps.start_branch(launch_id, branch, phase.branch,
                           {"launch_id": launch_id, "branch": branch, "attempt": attempt})
        running[phase_id] = branch

    def join(phase_id: str) -> None:
        if phase_id in running:
            join_branch(steps, launch_id, running.pop(phase_id))
            done.add(phase_id)

    def join_all(phase_ids) -> None:
        for phase_id in phase_ids:
            join(phase_id)

    for phase in catalogue.branch_phases():
        join_all(phase.after)
        start(phase.id)

    # Code review can go in before the filing is done. Before each 提审 the client tries the
    # trial version (体验版) and accepts it, unless the trial gate is switched off; a failed
    # review reopens the phase the catalogue names (implementation) as a new branch run.
    review = catalogue.phases["review"]
    join_all(review.after)
    fix_phase = catalogue.reopened_by("code-review")
    trial_gate = steps.gate_in_use(launch_id, TRIAL_GATE)
    trials = 0
    attempt = 1
    while True:
        while trial_gate:
            trials += 1
            if pass_gate(steps, info, TRIAL_GATE, trials).passed:
                break  # changes requested: staff adjust the trial version and share it again
        pass_gate(steps, info, "review-submission", attempt)
        if pass_gate(steps, info, "code-review", attempt).passed:
            break
        attempt += 1
        if fix_phase is not None:
            start(fix_phase.id, attempt)
            join(fix_phase.id)

    # Release only when review passed AND the filing is complete (rule since 2023-09-01).
    join_all(catalogue.phases["release"].after)
    pass_gate(steps, info, "release", 1)
    steps.mark_released(launch_id)
    steps.refresh_artifacts(launch_id, "released")
    return "released"
