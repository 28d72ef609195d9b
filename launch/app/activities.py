"""The activities of a launch (Temporal's word): each store read or write one flow step needs.

Flow logic (`launch/process`) calls them through a `Steps` adapter; the Prefect adapter
wraps each in a one-line task (`tasks/`), the in-memory orchestrator of the flow-logic
tests calls them directly. Which ones a replay loads instead of running again is said
once, in `launch.process.ports.ACTIVITIES`.

Every write here is idempotent (insert-or-get, unique keys), so an activity that ran but
whose result was not persisted (a crash in between) changes nothing when it runs again.
Staff free text goes to the store as typed; what is returned (Prefect persists it), logged
or shown is scrubbed (`launch.domain.masking`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from launch.app.resources import Resources
from launch.domain.deadlines import gate_due
from launch.domain.forms import FormProblem, MiniProgramProfileForm
from launch.domain.profile import ProfileChange, profile_changes, profile_problems
from launch.domain.rules import RuleConfig
from launch.domain.masking import mask_name, scrub_form_data, scrub_free_text, scrub_text
from launch.domain.vocabulary import DecisionChannel
from launch.app.views import DecisionView, LaunchInfo, OpenedGate

PROFILE_GATE = "mini-program-profile"
FACE_GATE = "face-verification"

FORM_PRIVACY_NOTE = (
    "> 请勿在表单中填写手机号、身份证号等个人信息：Prefect 会保存表单内容。"
    "需要记录时请使用 `weapp-launch approve`。 / Do not type phone or ID numbers or other personal data "
    "into this form: Prefect keeps what is typed here. Use `weapp-launch approve` when they must be recorded."
)


def check_profile_decision(store, launch_id: str, attempt: int, rules: RuleConfig) -> tuple[list[FormProblem], list]:
    """(problems, changes to count) of the recorded profile decision of ``attempt``, against
    WeChat's change limits and the client's change history. Usable outside a flow too."""
    decision = store.get_decision(launch_id, PROFILE_GATE, attempt)
    if decision is None:
        return [], []
    launch = store.get_launch(launch_id)
    form = MiniProgramProfileForm.model_validate(
        {**decision.payload, "decided_by": decision.actor or "-", "outcome": decision.outcome}
    )
    history = [
        ProfileChange(c.field, c.changed_at, c.count)
        for c in store.profile_changes(launch.client_id, exclude=(launch_id, attempt))
    ]
    released = [x.released_at for x in store.list_launches(client_id=launch.client_id) if x.released_at]
    problems = profile_problems(form, history, decision.decided_at, rules.profile, released_at=min(released, default=None))
    return problems, profile_changes(form, decision.decided_at)


class Activities:
    """The activities over one set of resources.

    `run_id` answers the id of the flow run the activity runs in (Prefect's runtime, or the
    in-memory orchestrator's current run); `logger` the logger to write to (Prefect's run
    logger sends lines to the run's page)."""

    def __init__(self, res: Resources, run_id: Callable[[], str | None],
                 logger: Callable[[], logging.Logger | logging.LoggerAdapter] | None = None) -> None:
        self.res = res
        self._run_id = run_id
        self._logger = logger or (lambda: logging.getLogger("weapp_launch.activities"))

    # --- the launch ----------------------------------------------------------------------
    def launch_info(self, launch_id: str) -> LaunchInfo:
        store = self.res.store
        launch = store.get_launch(launch_id)
        if launch is None:
            raise ValueError(f"launch_id: 没有这个上线任务 / no launch {launch_id}")
        client = store.get_client(launch.client_id)
        name = mask_name(client.display_name) if client.subject_type == "individual" else client.display_name
        return LaunchInfo(
            launch_id=launch.id, client_id=client.id, client_name=name,
            mini_program_name=client.mini_program_name, registration_path=launch.registration_path,
            subject_type=client.subject_type, flow_run_id=launch.flow_run_id,
        )

    def bind_launch_run(self, launch_id: str) -> None:
        """The launch run records its own id: wake-ups and artifacts find it even if `start` died midway."""
        self.res.store.set_launch_flow_run(launch_id, self._run_id())

    def mark_released(self, launch_id: str) -> None:
        self.res.store.set_launch_status(launch_id, "released", at=self.res.now())
        self.res.store.note_effect(launch_id, "released", self._run_id())

    def gate_in_use(self, launch_id: str, gate_id: str) -> bool:
        """Whether a gate a setting can switch off is on for this launch (decided once per launch:
        a replay after the setting changed keeps the path taken)."""
        return gate_id in self.res.catalogue.gates

    # --- gates ---------------------------------------------------------------------------
    def open_gate(self, launch_id: str, gate_id: str, attempt: int) -> OpenedGate:
        """The gate starts waiting: its step row, deadline and the run that will park there."""
        gate = self.res.catalogue.gate(gate_id)
        opened_at = self.res.now()
        due = gate_due(gate, opened_at, self.res.calendar)
        step = self.res.store.open_step(
            launch_id, gate_id, attempt, started_at=opened_at, due_at=due.at, provisional=due.provisional,
            flow_run_id=self._run_id(), gate_key=gate.key(attempt),
        )
        # The ledger counts executions of this body: a replay must load, not run again.
        self.res.store.note_effect(launch_id, f"open:{gate.key(attempt)}", self._run_id())
        return OpenedGate(gate=gate_id, attempt=attempt, key=gate.key(attempt), opened_at=step.started_at,
                          due_at=step.due_at, provisional=step.provisional)

    def find_decision(self, launch_id: str, gate_id: str, attempt: int) -> DecisionView | None:
        decision = self.res.store.get_decision(launch_id, gate_id, attempt)
        return self._view(decision) if decision else None

    def record_form_decision(self, launch_id: str, gate_id: str, attempt: int, outcome: str, actor: str,
                             payload: dict) -> None:
        """A Resume form answered in the Prefect UI, as typed, into the store. Returns nothing (no
        result holds what was typed); insert-or-get, so a second run changes nothing."""
        self.res.store.record_decision(launch_id, gate_id, attempt, outcome=outcome, actor=actor,
                                       channel=DecisionChannel.UI, payload=payload, decided_at=self.res.now())

    def take_decision(self, launch_id: str, gate_id: str, attempt: int, outcome: str, actor: str, channel: str,
                      payload: dict) -> DecisionView:
        """Record (if not yet recorded) and consume a decision; close the gate's step. A decision
        already in the store (the usual case) is kept as recorded, never replaced by what is passed."""
        gate = self.res.catalogue.gate(gate_id)
        store, now = self.res.store, self.res.now()
        decision, _created = store.record_decision(launch_id, gate_id, attempt, outcome=outcome, actor=actor,
                                                   channel=channel, payload=payload, decided_at=now)
        passed = decision.outcome in gate.form.passing_outcomes
        if passed and decision.payload.get("appid"):
            # Registration tells us who the mini-program is: WeChat's pushes are matched on these.
            store.set_app_ids(launch_id, decision.payload["appid"], decision.payload.get("original_id"))
        store.mark_decision_consumed(decision.id, at=now)
        store.finish_step(launch_id, gate_id, attempt, status="done" if passed else "rejected",
                          outcome=decision.outcome, at=now)
        store.note_effect(launch_id, f"decide:{gate.key(attempt)}", self._run_id())
        view = self._view(decision)
        self._logger().info(
            "关卡 %s 第 %d 次：%s（%s，经 %s）/ gate %s attempt %d: %s by %s via %s",
            gate.name_zh, attempt, view.outcome, view.actor, view.channel,
            gate_id, attempt, view.outcome, view.actor, view.channel,
        )
        return view

    def describe_gate(self, info: LaunchInfo, opened: OpenedGate) -> str:
        """The Markdown on top of the Resume form: what to check or do, by when."""
        from launch.app.presentation import gate_markdown

        cat = self.res.catalogue
        text = gate_markdown(info, cat.gate(opened.gate), opened, self.res.store.steps_for(info.launch_id), cat,
                             tz=self.res.settings.timezone)
        return text + "\n\n" + FORM_PRIVACY_NOTE

    def note_problems(self, launch_id: str, gate_id: str, attempt: int, problems: list[FormProblem]) -> None:
        """A Resume form passed the schema but broke a cross-field rule: say why and wait again."""
        text = scrub_text("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.res.store.annotate_step(launch_id, gate_id, attempt, note=text)
        self._logger().warning("表单未通过校验，继续等待 / form refused, still waiting: %s", text)

    def forget_form_answers(self, gate_key: str) -> int:
        """Delete what the orchestrator kept of this gate's Resume forms, once the store has the
        decision: from then on a replay takes it from the store, so nothing reads them."""
        run_id = self._run_id()
        return self.res.orchestrator.forget_form_answers(run_id, gate_key) if run_id else 0

    # --- registration --------------------------------------------------------------------
    def settle_profile(self, launch_id: str, attempt: int) -> list[str]:
        """Count the decided profile gate's changes on the client, or refuse it (WeChat's change
        limits). Returns the rule ids it broke (empty: accepted and counted)."""
        store = self.res.store
        problems, changes = check_profile_decision(store, launch_id, attempt, self.res.rules)
        if problems:
            text = scrub_text("; ".join(f"{p.field}: {p.message}" for p in problems))
            store.refuse_decided_step(launch_id, PROFILE_GATE, attempt, note=text)
            self._logger().warning("小程序基本信息未通过 / profile refused: %s", text)
            return [p.rule for p in problems]
        launch = store.get_launch(launch_id)
        store.record_profile_changes(launch.client_id, launch_id, attempt, [(c.field, c.count, c.at) for c in changes])
        return []

    # --- filing --------------------------------------------------------------------------
    def face_task_still_valid(self, launch_id: str, face_attempt: int, before_submission: int) -> bool:
        """Is the face-verification task of ``face_attempt`` still usable for submission number
        ``before_submission``? WeChat's verify task lives 3 days from its creation (``valid_for``
        of the gate in the catalogue); an expired one is redone."""
        gate = self.res.catalogue.gate(FACE_GATE)
        step = self.res.store.get_step(launch_id, FACE_GATE, face_attempt)
        if step is None or step.started_at is None:
            return False
        return not gate.result_expired(step.started_at, self.res.now())

    # --- branches ------------------------------------------------------------------------
    def start_branch(self, launch_id: str, branch: str, flow_name: str, parameters: dict) -> str:
        run_id = self.res.orchestrator.start_branch_run(launch_id, branch, flow_name, parameters)
        self.res.store.start_branch(launch_id, branch, flow_run_id=run_id, started_at=self.res.now())
        self.res.store.note_effect(launch_id, f"branch:{branch}", self._run_id())
        self._logger().info("分支 %s 已启动 / branch %s started: %s", branch, branch, run_id)
        return run_id

    def branch_status(self, launch_id: str, branch: str) -> str | None:
        row = self.res.store.get_branch(launch_id, branch)
        return row.status if row else None

    def finish_branch(self, launch_id: str, branch: str) -> None:
        self.res.store.finish_branch(launch_id, branch, status="done", at=self.res.now())

    # --- acting on WeChat ----------------------------------------------------------------
    def act(self, launch_id: str, gate_id: str, attempt: int) -> str:
        """The gate's action on WeChat (launch/app/wechat_actions.py); "manual" without a platform."""
        from launch.app.wechat_actions import act

        done = act(self.res, launch_id, gate_id, attempt)
        self._logger().info("关卡 %s 第 %d 次 微信操作 / gate %s attempt %d WeChat action: %s",
                            gate_id, attempt, gate_id, attempt, done)
        return done

    # --- artifacts -----------------------------------------------------------------------
    def refresh_artifacts(self, launch_id: str, reason: str) -> None:
        """The launch page's artifacts, refreshed; `reason` makes each refresh its own cached call."""
        from launch.app.artifacts import launch_artifacts

        info = self.launch_info(launch_id)
        if not info.flow_run_id:
            return
        self.res.orchestrator.publish_artifacts(info.flow_run_id, launch_artifacts(self.res, info))

    # ----------------------------------------------------------------------------------
    def _view(self, decision) -> DecisionView:
        gate = self.res.catalogue.gate(decision.gate)
        return DecisionView(
            gate=decision.gate, attempt=decision.attempt, outcome=decision.outcome,
            actor=scrub_free_text(decision.actor), channel=decision.channel,
            payload=scrub_form_data(decision.payload), decided_at=decision.decided_at,
            passed=decision.outcome in gate.form.passing_outcomes,
        )
