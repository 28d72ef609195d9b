"""Steps the tool performs on WeChat itself, through the third-party platform (issue 12).

A gate whose catalogue entry names an `action` runs it right after the gate opens; then the
gate waits as always — for the decision the action recorded (submit for review, release) or
for WeChat's answer (the face check's result, by push or by the watcher's reconciliation).
Without a configured platform, or for a launch whose mini-program WeChat does not know yet,
an action does nothing and the gate stays the manual one staff know.

Exactly once: the action is a cached activity (a replay loads its answer); a crash after the
WeChat call but before the answer was kept runs it again, so each action first asks WeChat
what it already has (the latest audit, the release state) before acting again.
A refusal WeChat gives (no quota, profile incomplete, nothing approved to release) becomes a
note on the gate, in Chinese and English, and the gate waits for staff.
"""

from __future__ import annotations

import logging

from launch.app.resources import Resources
from launch.domain.vocabulary import DecisionChannel

log = logging.getLogger("weapp_launch.wechat_actions")

ACTOR = "微信开放平台 / WeChat platform"
MANUAL = "manual"  # no platform, or no mini-program yet: the gate is decided by staff or a push


def send_client_link(res: Resources, launch_id: str, gate_id: str, attempt: int, *, kind: str, link: str,
                     title: str, ask_zh: str, ask_en: str) -> None:
    """Alert the client (and ops) with a WeChat page someone on their side opens — the legal
    person's registration consent, the 公众号 admin's fastregisterauth — once per gate attempt.
    ``link`` is WeChat's URL, or a placeholder the deliverer turns into one (see links.render_links)."""
    res.store.enqueue_alert(
        dedupe_key=f"{launch_id}:{gate_id}:{attempt}:{kind}", rung="authorize-link", title=title,
        body=f"{ask_zh}：{link}\n{ask_en}: {link}", launch_id=launch_id, tags=("client", "ops"),
        created_at=res.now())


def act(res: Resources, launch_id: str, gate_id: str, attempt: int) -> str:
    """Run the gate's action; returns what happened (for the run's log and the tests)."""
    gate = res.catalogue.gate(gate_id)
    action = ACTIONS.get(gate.action or "")
    platform = res.wechat
    launch = res.store.get_launch(launch_id)
    if action is None or platform is None or launch is None or (not launch.appid and gate.action not in BEFORE_APPID):
        return MANUAL
    if res.store.get_decision(launch_id, gate_id, attempt) is not None:
        return "decided"  # staff or a push were first
    from launch.wechat.platform.errors import WeChatApiError, WeChatTransportError

    try:
        return action(res, platform, launch, gate_id, attempt)
    except (WeChatTransportError, WeChatApiError) as exc:
        if isinstance(exc, WeChatTransportError) or exc.retryable:
            return _defer(res, launch_id, gate_id, attempt, gate.action, exc)
        # WeChat refused: say why on the gate; staff decide it (or retry in the console).
        res.store.annotate_step(launch_id, gate_id, attempt,
                                note=f"{exc.zh}（错误码 {exc.errcode}） / {exc.en} (errcode {exc.errcode})")
        log.warning("WeChat refused %s for %s attempt %d: errcode %s", gate.action, gate_id, attempt, exc.errcode)
        return f"refused:{exc.errcode}"


DEFERRED_EFFECT = "action-deferred:"  # effects ledger "<prefix><gate>:<attempt>": tries WeChat could not take
RETRY_CLAIM = "action-retry:"  # "<prefix><gate>:<attempt>:<n>": the one watcher that retries try n


def _defer(res: Resources, launch_id: str, gate_id: str, attempt: int, action: str, exc: BaseException) -> str:
    """WeChat busy, rate-limited past the client's retries, or unreachable: not a refusal. The
    gate says so and waits; the watcher runs the action again (``retry_deferred``)."""
    tries = res.store.note_effect(launch_id, f"{DEFERRED_EFFECT}{gate_id}:{attempt}", at=res.now())
    zh, en = getattr(exc, "zh", "微信暂时无法处理"), getattr(exc, "en", "WeChat could not take the call")
    code = getattr(exc, "errcode", None)
    res.store.annotate_step(launch_id, gate_id, attempt, note=(
        f"微信暂时无法处理（{zh}{f'，错误码 {code}' if code is not None else ''}），第 {tries} 次；巡检将自动重试，"
        f"无需人工操作 / WeChat could not take it now ({en}{f', errcode {code}' if code is not None else ''}), "
        f"try {tries}; the watcher tries again by itself"))
    log.warning("WeChat could not take %s for %s attempt %d (try %d): %s", action, gate_id, attempt, tries,
                type(exc).__name__)
    return f"deferred:{tries}"


def retry_deferred(res: Resources, now, *, older_than_seconds: float, limit: int = 100) -> list[tuple[str, str, int, str]]:
    """The watcher's repair for actions WeChat could not take (``_defer``): each gate that still
    waits undecided, whose last try is older than ``older_than_seconds``, is acted on again —
    once per failed try, by the one watcher whose claim in the effects ledger comes first. Each
    action asks WeChat what it already has before acting (see the actions), so a try whose
    answer was lost is not repeated. A decision the action records is resumed at once.
    Returns (launch, gate, attempt, what happened) per retry."""
    from datetime import timedelta

    if res.wechat is None:
        return []
    gates = [g.id for g in res.catalogue.gates.values() if g.action in ACTIONS]
    cutoff = now - timedelta(seconds=older_than_seconds)
    done: list[tuple[str, str, int, str]] = []
    for step, _appid in res.store.waiting_on_wechat(gates, now, limit, before_appid=_gates_before_appid(res)):
        key = f"{DEFERRED_EFFECT}{step.step}:{step.attempt}"
        deferred = next((e for e in res.store.effects_for(step.launch_id) if e.effect_key == key), None)
        if deferred is None or deferred.ran_at > cutoff:
            continue  # never deferred (acted, refused or manual), or tried a moment ago
        if res.store.note_effect(step.launch_id, f"{RETRY_CLAIM}{step.step}:{step.attempt}:{deferred.count}",
                                 at=now) > 1:
            continue  # another watcher took this try
        what = act(res, step.launch_id, step.step, step.attempt)
        if res.store.get_decision(step.launch_id, step.step, step.attempt) is not None:
            from launch.app.decisions import resume_recorded

            resume_recorded(res, launch_id=step.launch_id, gate_id=step.step)
        done.append((step.launch_id, step.step, step.attempt, what))
    return done


def _gates_before_appid(res: Resources) -> tuple[str, ...]:
    return tuple(g.id for g in res.catalogue.gates.values() if g.action in BEFORE_APPID)


def _record(res: Resources, launch, gate_id: str, attempt: int, data: dict) -> None:
    from launch.app.decisions import submit_decision

    submit_decision(res, launch.id, gate_id, {"decided_by": ACTOR, **data}, DecisionChannel.WECHAT_API,
                    attempt=attempt, resume=False)


def _version(res: Resources, launch_id: str) -> str | None:
    """The version the latest implementation attempt delivered (its form's `version`)."""
    decided = [d for d in res.store.history(launch_id) if d.gate == "implementation" and d.payload.get("version")]
    return max(decided, key=lambda d: d.attempt).payload["version"] if decided else None


def submit_audit(res: Resources, platform, launch, gate_id: str, attempt: int) -> str:
    """提审: submit the committed version for review, with feedback on a resubmission. A review
    already running for it (a crash right after an earlier submit_audit) is taken as this
    attempt's submission: no second submit_audit, so 85009 is never reached."""
    from launch.wechat.platform.code import AuditState, SubmitAuditRequest
    from launch.wechat.platform.errors import WeChatApiError

    try:
        latest = platform.code.get_latest_auditstatus(launch.appid)
    except WeChatApiError as exc:
        if exc.retryable:
            raise  # busy: not knowing is not "no review yet" (act defers it)
        latest = None  # no review yet for this mini-program
    version = _version(res, launch.id) or "1.0.0"
    if latest is not None and latest.state in (AuditState.IN_REVIEW, AuditState.DELAYED) and attempt_is_open(
            res, launch.id, attempt):
        _record(res, launch, gate_id, attempt, {"outcome": "submitted", "version": version})
        return "in-review"
    feedback = None
    if attempt > 1:
        failed = res.store.get_decision(launch.id, "code-review", attempt - 1)
        feedback = f"已按审核意见修改 / changed as the review asked: {(failed.payload.get('reason') or '')}"[:200] \
            if failed else None
    platform.code.submit_audit(launch.appid, SubmitAuditRequest(version_desc=version, feedback_info=feedback))
    _record(res, launch, gate_id, attempt, {"outcome": "submitted", "version": version,
                                            **({"feedback": feedback} if feedback else {})})
    return "submitted"


def attempt_is_open(res: Resources, launch_id: str, attempt: int) -> bool:
    """Whether review attempt `attempt` has no result yet (a review in WeChat then is ours)."""
    return res.store.get_decision(launch_id, "code-review", attempt) is None


def release(res: Resources, platform, launch, gate_id: str, attempt: int) -> str:
    """发布: release the approved version (the flow only gets here when review passed AND the
    filing is done). Off when WEAPP_LAUNCH_WECHAT_AUTO_RELEASE is false: staff release."""
    from launch.wechat.platform.errors import WeChatApiError

    if not res.settings.wechat_auto_release:
        return MANUAL
    try:
        platform.code.release(launch.appid)
    except WeChatApiError as exc:
        if exc.errcode != 85052:  # 85052: already released (an earlier call whose answer was lost)
            raise
    _record(res, launch, gate_id, attempt, {"outcome": "released"})
    return "released"


def create_icp_verifytask(res: Resources, platform, launch, gate_id: str, attempt: int) -> str:
    """人脸核身: create the face-check task; WeChat notifies the admin (the notice lives 24 h,
    the task 3 days). The task id goes on the gate (the reconciliation asks WeChat about it);
    the gate then waits for WeChat's result."""
    from launch.app.icp_application import remember_verify_task

    task = platform.icp.create_icp_verifytask(launch.appid)
    remember_verify_task(res, launch.id, attempt, task.task_id)  # the filing application carries it
    res.store.annotate_step(launch.id, gate_id, attempt,
                            note=f"人脸核验任务已创建，等待管理员完成 / face-check task created, waiting for the admin: "
                                 f"task_id={task.task_id}")
    return "task-created"


def apply_icp_filing(res: Resources, platform, launch, gate_id: str, attempt: int) -> str:
    """提交备案: the application built from the intake, its documents uploaded, applied once
    (launch/app/icp_application.py)."""
    from launch.app.icp_application import apply_icp_filing as apply

    return apply(res, platform, launch, gate_id, attempt)


REGISTER_TASK_EFFECT = "fastregister-task:"  # effects ledger: "<prefix><attempt>:<taskid>"
LINK_VALID_HOURS = 24


def registration_task(res: Resources, launch_id: str, attempt: int | None = None) -> tuple[int, str] | None:
    """(attempt, taskid) of the registration task the action created for ``attempt`` (None:
    the latest), from the effects ledger; None when none was created."""
    found = []
    for e in res.store.effects_for(launch_id):
        if e.effect_key.startswith(REGISTER_TASK_EFFECT):
            n, _, taskid = e.effect_key.removeprefix(REGISTER_TASK_EFFECT).partition(":")
            if n.isdigit() and taskid and (attempt is None or int(n) == attempt):
                found.append((int(n), taskid))
    return max(found) if found else None


def fast_register_enterprise(res: Resources, platform, launch, gate_id: str, attempt: int) -> str:
    """平台代注册: create WeChat's fast-registration task for the client's enterprise
    (fastregisterenterpriseweapp, new version: name, the 18-character credit code, the platform's
    contact phone — read from the encrypted intake here, never handed to Prefect, never logged)
    and send the client WeChat's authorisation link (valid 24 h; not personal data). WeChat then
    answers with notify_third_fasteregister, or the watcher's query action finds the result.

    Once per attempt: the task id goes to the effects ledger right after WeChat's answer; a
    replay that finds it creates nothing. A crash between WeChat's answer and the ledger write
    makes the replay's call meet 89249 ("a task for this subject is running"): nothing is
    created twice, the gate says so and waits for WeChat's push (found by the credit code)."""
    from launch.wechat.platform.errors import WeChatApiError
    from launch.wechat.platform.registration import EnterpriseRegistration

    if registration_task(res, launch.id, attempt) is not None:
        return "task-exists"
    intake = res.store.client_intake(launch.client_id)
    subject, registration = intake.get("subject") or {}, intake.get("registration") or {}
    try:
        request = EnterpriseRegistration(name=subject.get("name") or "", code=subject.get("credit_code") or "",
                                         component_phone=registration.get("component_phone") or "")
    except ValueError as exc:  # pydantic's message would quote the value: name the fields only
        ours = {"name": "subject.name", "code": "subject.credit_code", "component_phone": "registration.component_phone"}
        fields = ", ".join(sorted({ours.get(str(e["loc"][0]), str(e["loc"][0]))
                                   for e in getattr(exc, "errors", lambda: [])()})) or "intake"
        res.store.annotate_step(launch.id, gate_id, attempt, note=(
            f"资料不符合代注册要求（字段：{fields}；规则：名称、18 位统一社会信用代码、第三方联系电话必填），请修正后由运营处理 / "
            f"the intake does not meet fast registration's rules (fields: {fields}; rule: name, an 18-character "
            "credit code and the platform's contact phone are required): fix it, staff decide the gate"))
        return "refused:intake"
    try:
        task = platform.registration.create_enterprise(request)
    except WeChatApiError as exc:
        if exc.errcode != 89249:
            raise
        res.store.annotate_step(launch.id, gate_id, attempt, note=(
            "微信称该主体已有代注册任务在进行（之前的请求已被受理），等待其结果推送 / WeChat says a registration task "
            "for this subject is running (an earlier call went through): waiting for its result push"))
        return "task-running"
    taskid = task.taskid or "-"
    res.store.note_effect(launch.id, f"{REGISTER_TASK_EFFECT}{attempt}:{taskid}"[:255])
    link = task.authorize_url or ""
    res.store.annotate_step(launch.id, gate_id, attempt, note=(
        f"已向微信发起代注册，授权链接已发给客户（{LINK_VALID_HOURS} 小时内有效）/ registration task created, the "
        f"authorisation link sent to the client (valid {LINK_VALID_HOURS} h): taskid={taskid} link={link}"))
    if link:
        send_client_link(
            res, launch.id, gate_id, attempt, kind="authorize-link", link=link,
            title="请法人 24 小时内完成小程序注册授权 / the legal person authorises the registration within 24 h",
            ask_zh=f"请法人用本人微信打开以下链接（或扫描其二维码）完成授权验证，{LINK_VALID_HOURS} 小时内有效",
            ask_en=("Ask the legal person to open this link in their own WeChat (or scan its QR code) and confirm "
                    f"within {LINK_VALID_HOURS} hours"))
    return "task-created"


def fastregister_by_official_account(res: Resources, platform, launch, gate_id: str, attempt: int) -> str:
    """复用公众号资质快速注册: send the 公众号's admin WeChat's fastregisterauth link, whose redirect
    comes back to the receiver (/wechat/fastregistered/…), which registers and records the result
    (launch/app/fastregister_reuse.py). The 公众号 must have authorised the platform with
    permission set 27; else a note says so and the gate stays manual."""
    from launch.app.fastregister_reuse import send_link

    return send_link(res, platform, launch, gate_id, attempt)


def set_profile(res: Resources, platform, launch, gate_id: str, attempt: int) -> str:
    """设置小程序基本信息: name, avatar, introduction and categories from the intake, each only when
    WeChat does not have it yet (launch/app/profile_action.py)."""
    from launch.app.profile_action import set_profile as set_it

    return set_it(res, platform, launch, gate_id, attempt)


ACTIONS = {"submit_audit": submit_audit, "release": release, "create_icp_verifytask": create_icp_verifytask,
           "apply_icp_filing": apply_icp_filing, "fast_register_enterprise": fast_register_enterprise,
           "set_profile": set_profile, "fastregister_by_official_account": fastregister_by_official_account}
BEFORE_APPID = {"fast_register_enterprise", "fastregister_by_official_account"}  # actions that make the mini program (no app id yet)
