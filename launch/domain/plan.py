"""Forecast of a launch: earliest and latest finish of each phase, and the go-live window.

Walks the catalogue's phases in dependency order; a phase starts when all of the
phases it depends on have finished, so parallel branches (filing beside design →
implementation → content) are respected. Pure: calendar and start date are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from launch.domain.calendar import WorkCalendar
from launch.domain.catalogue import Catalogue


@dataclass(frozen=True)
class PhasePlan:
    phase: str
    name_zh: str
    name_en: str
    owner: str
    estimate_wd: tuple[int, int]
    after: tuple[str, ...]
    earliest_start: date
    latest_start: date
    earliest_finish: date
    latest_finish: date
    provisional: bool


@dataclass(frozen=True)
class Plan:
    start: date
    registration_path: str
    phases: list[PhasePlan]
    go_live_earliest: date
    go_live_latest: date
    provisional: bool

    def to_json(self) -> dict:
        return {
            "start": self.start.isoformat(),
            "registration_path": self.registration_path,
            "go_live": {"earliest": self.go_live_earliest.isoformat(), "latest": self.go_live_latest.isoformat()},
            "provisional": self.provisional,
            "phases": [
                {
                    "phase": p.phase,
                    "name_zh": p.name_zh,
                    "name_en": p.name_en,
                    "owner": p.owner,
                    "estimate_wd": list(p.estimate_wd),
                    "after": list(p.after),
                    "earliest_start": p.earliest_start.isoformat(),
                    "latest_start": p.latest_start.isoformat(),
                    "earliest_finish": p.earliest_finish.isoformat(),
                    "latest_finish": p.latest_finish.isoformat(),
                    "provisional": p.provisional,
                }
                for p in self.phases
            ],
        }


def make_plan(catalogue: Catalogue, calendar: WorkCalendar, start: date, registration_path: str) -> Plan:
    finished: dict[str, PhasePlan] = {}
    for phase in catalogue.phase_order():
        low, high = phase.estimate(registration_path)
        deps = [finished[d] for d in phase.after]
        early_start = max((d.earliest_finish for d in deps), default=start)
        late_start = max((d.latest_finish for d in deps), default=start)
        early = calendar.add_workdays(early_start, low)
        late = calendar.add_workdays(late_start, high)
        finished[phase.id] = PhasePlan(
            phase=phase.id,
            name_zh=phase.name_zh,
            name_en=phase.name_en,
            owner=phase.owner,
            estimate_wd=(low, high),
            after=phase.after,
            earliest_start=early_start,
            latest_start=late_start,
            earliest_finish=early.value,
            latest_finish=late.value,
            provisional=early.provisional or late.provisional or any(d.provisional for d in deps),
        )
    phases = list(finished.values())
    last = phases[-1]
    return Plan(
        start=start,
        registration_path=registration_path,
        phases=phases,
        go_live_earliest=last.earliest_finish,
        go_live_latest=last.latest_finish,
        provisional=any(p.provisional for p in phases),
    )
