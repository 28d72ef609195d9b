"""Resources, built once per environment and passed in (never fetched from a global).

Dagster-style: a `Resources` holds the store, the clock, the working-day calendar, the
process catalogue, the settings, the orchestrator (Prefect, or the in-memory one of the
flow-logic tests) and the notifier configuration. Entry points (the CLI, the receiver, the
Prefect flows' composition root in `deployments/`) build one with `Resources.from_settings`;
tests build theirs with the store, clock or orchestrator they want.

Members that cost something (a database engine, the Prefect client) are built on first use,
so an entry point that only checks its arguments opens nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from launch.domain.calendar import WorkCalendar
from launch.domain.catalogue import Catalogue, load_catalogue
from launch.domain.rules import RuleConfig
from launch.settings import Settings

if TYPE_CHECKING:
    from launch.store import Store


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


@dataclass
class FixedClock:
    """A clock tests move by hand (time-skipping, as in Temporal's test environment)."""

    at: datetime

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at = self.at + timedelta(**delta)
        return self.at


def catalogue_for(settings: Settings) -> Catalogue:
    # Gates behind a setting (a `switch` in the catalogue) are dropped when it is off.
    return load_catalogue(settings.process_file).with_switches({"trial_acceptance": settings.trial_acceptance})


@dataclass
class Resources:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    _store: Any = None
    _calendar: WorkCalendar | None = None
    _catalogue: Catalogue | None = None
    _orchestrator: Any = None
    _notifier: Any = None
    _rules: RuleConfig | None = None
    _wechat: Any = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> Resources:
        """The production and local environment: everything from WEAPP_LAUNCH_* settings."""
        return cls(settings=settings or Settings(), **overrides)

    # --- built on first use --------------------------------------------------------------
    @cached_property
    def store(self) -> Store:
        if self._store is not None:
            return self._store
        from launch.store import Store

        return Store.from_settings(self.settings)

    @cached_property
    def calendar(self) -> WorkCalendar:
        return self._calendar or WorkCalendar.from_file(self.settings.calendar_file, tz=self.settings.timezone)

    @cached_property
    def catalogue(self) -> Catalogue:
        return self._catalogue or catalogue_for(self.settings)

    @cached_property
    def rules(self) -> RuleConfig:
        """The preflight figures (quotas, province lists, WeChat's change limits), read once."""
        return self._rules or RuleConfig.load(self.settings.rules_file)

    @cached_property
    def orchestrator(self) -> Any:
        if self._orchestrator is not None:
            return self._orchestrator
        from launch.orchestration.prefect import PrefectOrchestrator

        return PrefectOrchestrator(self.settings)

    @cached_property
    def wechat(self) -> Any:
        """The WeChat third-party platform (launch.wechat.platform.WeChatPlatform), or None when
        none is configured: then every WeChat-side step stays a manual gate."""
        if self._wechat is not None:
            return self._wechat
        from launch.wechat.platform.platform import build_platform

        return build_platform(self.settings, self.store, now=self.now)

    @cached_property
    def notifier(self) -> Any:
        """The notifier configuration (channels, people); None when alerts are not set up."""
        if self._notifier is not None:
            return self._notifier
        from notifiers.config import load_notifier_config

        return load_notifier_config(self.settings)

    # --- small conveniences every service needs ------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def local(self, dt: datetime | None) -> str:
        """A timestamp as staff read it: the configured time zone, minutes."""
        if dt is None:
            return ""
        return dt.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")

    def close(self) -> None:
        if self.__dict__.get("wechat") is not None and self._wechat is None:
            self.wechat.close()
        if "store" in self.__dict__:
            self.store.close()
