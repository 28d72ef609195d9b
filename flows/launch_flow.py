"""The launch: one flow run per client launch, from registration to release.

Only the order of steps lives here. Gates, branches, store writes and artifacts
are tasks; which gates exist, their forms and deadlines come from the catalogue.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from prefect import flow

from flows.gate import pass_gate
from launch import runtime
from tasks.artifacts import refresh_artifacts
from tasks.branches import join_branch, start_branch
from tasks.gates import gate_in_use, launch_info
from tasks.launches import bind_launch_run, mark_released
from tasks.registration import settle_profile


def _join(launch_id: str, branch: str) -> None:
    join_branch(launch_id, branch, runtime.settings().gate_timeout_days * 86400)


def register(info, gate: Callable[[str, int], Any], profile_refused: Callable[[int], Any], catalogue) -> None:
    """The registration phase: which gate, which attempt, in which order.

    ``gate(gate_id, attempt)`` passes a gate and returns its decision (``.passed``,
    ``.outcome``); ``profile_refused(attempt)`` is true when the profile decision broke a
    change limit. Plain Python, so the loops are tested without a server.

    * reuse path: the 公众号 admin authorises -> account/fastregister answers at once. Not
      registered ("failed") -> authorise again. "registered_unverified" (registered but 认证
      failed) -> the admin is bound, then ONLY the 认证 is done again (wechat-verification).
    * standalone path: email activation -> subject information -> 认证 (not for 个人).
    * a failed 认证 reopens the 认证 gate alone (attempt n+1), never activation or subject info.
    * both paths end with the mini-program's profile (name, avatar, intro, categories), which
      the filing needs; a decision over WeChat's change limits is refused and asked again.
    """
    attempts: Counter[str] = Counter()

    def at(gate_id: str):
        attempts[gate_id] += 1
        return gate(gate_id, attempts[gate_id])

    def until_passed(gate_id: str):
        if gate_id not in catalogue.gates:  # switched off in this catalogue
            return None
        while not (decision := at(gate_id)).passed:
            pass
        return decision

    verification = catalogue.gates.get("wechat-verification")
    needs_verification = verification is not None and info.subject_type not in verification.skip_for_subject_types
    if info.registration_path == "reuse_official_account":
        while True:
            until_passed("official-account-authorization")
            fast = at("fast-registration")
            if fast.passed:
                break
        until_passed("admin-binding")
        needs_verification = needs_verification and fast.outcome != "succeeded"
    else:
        until_passed("email-activation")
        until_passed("subject-info")
    if needs_verification:
        until_passed("wechat-verification")  # a failed 认证: resubmit the 认证 only
    if "mini-program-profile" in catalogue.gates:
        while True:
            at("mini-program-profile")
            if not profile_refused(attempts["mini-program-profile"]):
                break


def _register(info) -> None:
    register(
        info,
        gate=lambda gate_id, attempt: pass_gate(info, gate_id, attempt),
        profile_refused=lambda attempt: settle_profile(info.launch_id, attempt),
        catalogue=runtime.catalogue(),
    )


@flow(name="launch", persist_result=True, log_prints=False)
def launch(launch_id: str) -> str:
    bind_launch_run(launch_id)
    info = launch_info(launch_id)
    _register(info)

    # Filing waits on WeChat, MIIT and the bureau for weeks: its own run, in parallel.
    start_branch(launch_id, "filing", "filing", {"launch_id": launch_id, "branch": "filing"})
    # Design -> implementation -> content, each its own run (each parks at its own gates).
    for flow_name in ("design", "implementation", "content"):
        branch = f"{flow_name}-1" if flow_name == "implementation" else flow_name
        start_branch(launch_id, branch, flow_name, {"launch_id": launch_id, "branch": branch, "attempt": 1})
        _join(launch_id, branch)

    # Code review can go in before the filing is done; a failure goes back to implementation.
    # Before each 提审 the client tries the trial version (体验版) and accepts it — unless the
    # `trial-acceptance` gate is switched off (WEAPP_LAUNCH_TRIAL_ACCEPTANCE=false).
    trial_gate = gate_in_use(launch_id, "trial-acceptance")
    trials = 0
    attempt = 1
    while True:
        while trial_gate:
            trials += 1
            if pass_gate(info, "trial-acceptance", trials).passed:
                break  # changes requested: staff adjust the trial version and share it again
        pass_gate(info, "review-submission", attempt)
        if pass_gate(info, "code-review", attempt).passed:
            break
        attempt += 1
        fix = f"implementation-{attempt}"
        start_branch(launch_id, fix, "implementation", {"launch_id": launch_id, "branch": fix, "attempt": attempt})
        _join(launch_id, fix)

    # Release only when review passed AND the filing is complete (rule since 2023-09-01).
    _join(launch_id, "filing")
    pass_gate(info, "release", 1)
    mark_released(launch_id)
    refresh_artifacts(launch_id, "released")
    return "released"
