"""Small, serialisable views passed between tasks and flows (no personal data in them)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class LaunchInfo(BaseModel):
    launch_id: str
    client_id: str
    client_name: str  # subject name (company), masked for individual subjects
    mini_program_name: str
    registration_path: str
    subject_type: str
    flow_run_id: str | None = None


class OpenedGate(BaseModel):
    gate: str
    attempt: int
    key: str
    opened_at: datetime
    due_at: datetime | None
    provisional: bool


class DecisionView(BaseModel):
    gate: str
    attempt: int
    outcome: str
    actor: str
    channel: str
    payload: dict
    decided_at: datetime
    passed: bool
