"""The process catalogue: phases and gates of a launch, loaded from data/process.yaml.

Everything that needs to know the steps reads it from here: flows (gate ids,
forms, descriptions), the plan, the deadline watcher, artifacts, CLI, receiver.
"""

from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml

from launch.domain.yamltext import load_yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from launch.domain.forms import FormError, FormProblem, GateForm, form_class, validate_form

RegistrationPath = Literal["standalone", "reuse_official_account", "platform_fast_registration"]
REGISTRATION_PATHS: tuple[str, ...] = ("standalone", "reuse_official_account", "platform_fast_registration")


class CatalogueError(ValueError):
    """The process file is unreadable or breaks a rule; the message names file and key."""


class Deadline(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    workdays: int | None = Field(default=None, ge=0)
    hours: float | None = Field(default=None, gt=0)
    days: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _exactly_one(self) -> "Deadline":
        if sum(v is not None for v in (self.workdays, self.hours, self.days)) != 1:
            raise ValueError("deadline needs exactly one of workdays, hours, days / 截止规则须且仅须给出一项")
        return self

    def describe_zh(self) -> str:
        if self.workdays is not None:
            return f"{self.workdays} 个工作日"
        if self.hours is not None:
            return f"{self.hours:g} 小时"
        return f"{self.days:g} 天"


class Phase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    name_zh: str
    name_en: str
    owner: str
    estimate_wd: tuple[int, int] | dict[str, tuple[int, int]]
    after: tuple[str, ...] = ()
    branch: str | None = None  # run as its own flow run of this name
    # A gate whose failure reopens this phase (a failed code review: implementation again);
    # each run of it is then named "<branch>-<attempt>".
    reopened_by: str | None = None

    def run_name(self, attempt: int = 1) -> str:
        """The branch's name for this attempt (the idempotency key of its flow run)."""
        return f"{self.branch}-{attempt}" if self.reopened_by else str(self.branch)

    def estimate(self, path: str) -> tuple[int, int]:
        if isinstance(self.estimate_wd, dict):
            return self.estimate_wd[path]
        return self.estimate_wd


class Actor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name_zh: str
    name_en: str
    tags: tuple[str, ...]


class Gate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    phase: str
    name_zh: str
    name_en: str
    actor: str
    form_name: str = Field(alias="form")  # a class of launch/domain/forms.py
    todo_zh: str
    deadline: Deadline
    ladder: str = "standard"
    path: RegistrationPath | None = None
    skip_for_subject_types: tuple[str, ...] = ()
    # On these registration paths the gate is met only when an earlier outcome asks for it
    # (wechat-verification on the reuse path: after "registered but 认证 failed"), so it is
    # not part of the path's list of gates (gates_of / gates_for); the flow opens it.
    optional_on_paths: tuple[RegistrationPath, ...] = ()
    # How long what this gate produced stays usable, from the moment the gate opened
    # (WeChat's face-verification task: 3 days). A later step that needs it redoes the
    # gate once it is older than this.
    valid_for: Deadline | None = None
    # What the tool does on WeChat when the gate opens, where a third-party platform is
    # configured (launch/app/wechat_actions.py); the gate then waits as always.
    action: Literal["submit_audit", "release", "create_icp_verifytask", "apply_icp_filing",
                    "fast_register_enterprise", "set_profile", "fastregister_by_official_account"] | None = None
    # A boolean setting that turns this gate on (WEAPP_LAUNCH_<SWITCH>); off drops the gate.
    switch: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")

    @property
    def form(self) -> type[GateForm]:
        return form_class(self.form_name)

    def result_expired(self, opened_at: datetime, now: datetime) -> bool:
        """True when what the gate produced (opened at ``opened_at``) is no longer usable at
        ``now``. Clock time only (hours/days); a gate without ``valid_for`` never expires."""
        v = self.valid_for
        if v is None:
            return False
        if v.workdays is not None:
            raise ValueError(f"gates.{self.id}.valid_for: use hours or days / 有效期须用 hours 或 days")
        life = timedelta(hours=v.hours) if v.hours is not None else timedelta(days=v.days)
        return now - opened_at >= life

    def key(self, attempt: int) -> str:
        """Prefect pause key of an attempt: lowercase, digits and dashes only."""
        return f"{self.id}-{attempt}"


_JOIN_KEY = re.compile(r"^join-(?P<branch>[a-z0-9-]+)-(?P<n>\d+)$")


def join_key(branch: str, n: int) -> str:
    """Prefect pause key of the launch's n-th wait for a branch (n walks past earlier wake-ups)."""
    return f"join-{branch}-{n}"


def branch_of_join(key: str | None) -> str | None:
    """The branch a join pause key waits for; None for a gate's key."""
    m = _JOIN_KEY.match(key or "")
    return m.group("branch") if m else None


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    phases: dict[str, Phase]
    gates: dict[str, Gate]
    actors: dict[str, Actor]

    @model_validator(mode="after")
    def _consistent(self) -> "Catalogue":
        problems = []
        for gate in self.gates.values():
            if gate.phase not in self.phases:
                problems.append(f"gates.{gate.id}.phase: unknown phase {gate.phase}")
            if gate.actor not in self.actors:
                problems.append(f"gates.{gate.id}.actor: unknown actor {gate.actor}")
            try:
                form_class(gate.form_name)
            except KeyError:
                problems.append(f"gates.{gate.id}.form: no form {gate.form_name} in launch/domain/forms.py")
        for phase in self.phases.values():
            if phase.reopened_by is not None and phase.reopened_by not in self.gates:
                problems.append(f"phases.{phase.id}.reopened_by: unknown gate {phase.reopened_by}")
            for dep in phase.after:
                if dep not in self.phases:
                    problems.append(f"phases.{phase.id}.after: unknown phase {dep}")
            if isinstance(phase.estimate_wd, dict) and set(phase.estimate_wd) != set(REGISTRATION_PATHS):
                problems.append(f"phases.{phase.id}.estimate_wd: needs one range per path {REGISTRATION_PATHS}")
            for lo, hi in (phase.estimate_wd.values() if isinstance(phase.estimate_wd, dict) else [phase.estimate_wd]):
                if lo > hi or lo < 0:
                    problems.append(f"phases.{phase.id}.estimate_wd: [{lo}, {hi}] must be 0 <= min <= max")
        if problems:
            raise ValueError("; ".join(problems))
        self.phase_order()  # raises on a cycle
        return self

    def phase_order(self) -> list[Phase]:
        """Phases in dependency order (stable: file order among equals)."""
        done: list[str] = []
        pending = list(self.phases)
        while pending:
            ready = [p for p in pending if all(d in done for d in self.phases[p].after)]
            if not ready:
                raise ValueError(f"phases: dependency cycle among {pending}")
            done.append(ready[0])
            pending.remove(ready[0])
        return [self.phases[p] for p in done]

    def validate_form(self, gate_id: str, data: dict) -> GateForm:
        """Parse and fully check a decision for a gate; FormError names every bad field."""
        gate = self.gates.get(gate_id)
        if gate is None:
            raise FormError(gate_id, [FormProblem(field="gate", rule="unknown-gate",
                                                  message=f"未知的关卡 {gate_id} / unknown gate {gate_id}")])
        return validate_form(gate_id, gate.form, data)

    def branch_phases(self) -> list[Phase]:
        """Phases that run as flow runs of their own, in dependency order."""
        return [p for p in self.phase_order() if p.branch]

    def reopened_by(self, gate_id: str) -> Phase | None:
        return next((p for p in self.phases.values() if p.reopened_by == gate_id), None)

    def gate(self, gate_id: str) -> Gate:
        try:
            return self.gates[gate_id]
        except KeyError:
            raise KeyError(f"未知的关卡 {gate_id} / unknown gate {gate_id}; known: {', '.join(self.gates)}") from None

    def gates_of(self, phase: str, path: str | None = None, subject_type: str | None = None) -> list[Gate]:
        """The gates a launch meets in a phase, in order, for its registration path and subject type."""
        return [
            g
            for g in self.gates.values()
            if g.phase == phase
            and (g.path is None or path is None or g.path == path)
            and (path is None or path not in g.optional_on_paths)
            and (subject_type is None or subject_type not in g.skip_for_subject_types)
        ]

    def gates_for(self, path: str, subject_type: str | None = None) -> list[Gate]:
        return [g for p in self.phase_order() for g in self.gates_of(p.id, path, subject_type)]

    def with_switches(self, switches: dict[str, bool]) -> "Catalogue":
        """The catalogue without the gates whose ``switch`` is off in ``switches``
        (a switch not given stays on)."""
        keep = {k: g for k, g in self.gates.items() if g.switch is None or switches.get(g.switch, True)}
        if len(keep) == len(self.gates):
            return self
        return self.model_copy(update={"gates": keep})


def _deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path | None, text: str | None = None) -> dict:
    try:
        data = load_yaml(text if text is not None else path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError(f"{path}: 无法读取 / cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path}: 不是有效的 YAML / not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CatalogueError(f"{path}: 顶层必须是映射 / top level must be a mapping")
    return data


def load_catalogue(override_file: Path | None = None) -> Catalogue:
    """The packaged catalogue, with an optional YAML overlay (only the keys it changes)."""
    text = resources.files("launch.domain").joinpath("data/process.yaml").read_text(encoding="utf-8")
    data = _read_yaml(Path("launch/domain/data/process.yaml"), text)
    source = "launch/domain/data/process.yaml"
    if override_file is not None:
        data = _deep_merge(data, _read_yaml(override_file))
        source = f"{override_file} (over the packaged catalogue)"
    for section in ("phases", "gates"):
        for key, value in (data.get(section) or {}).items():
            if isinstance(value, dict):
                value.setdefault("id", key)
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise CatalogueError(f"{source}: 流程目录无效 / invalid process catalogue: " + "; ".join(lines)) from None


@lru_cache
def default_catalogue() -> Catalogue:
    return load_catalogue()
