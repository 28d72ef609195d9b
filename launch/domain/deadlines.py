"""When a gate is due: the catalogue's deadline rule applied with the working-day calendar."""

from __future__ import annotations

from datetime import datetime

from launch.domain.calendar import DeadlineAnswer, WorkCalendar
from launch.domain.catalogue import Gate


def gate_due(gate: Gate, opened_at: datetime, calendar: WorkCalendar) -> DeadlineAnswer:
    """Working days for most gates, clock hours for the SMS window, calendar days for WeChat's verify task."""
    rule = gate.deadline
    if rule.workdays is not None:
        return calendar.due_after_workdays(opened_at, rule.workdays)
    if rule.hours is not None:
        return calendar.due_after_hours(opened_at, rule.hours)
    return calendar.due_after_days(opened_at, rule.days)
