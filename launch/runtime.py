"""Process-wide singletons built from settings: the store, the calendar, the catalogue.

Domain code never reads these; adapters (tasks, CLI, receiver, watcher) do, so a
test can point everything at another database by setting WEAPP_LAUNCH_* and
calling reset().
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from launch.domain.calendar import WorkCalendar
from launch.domain.catalogue import Catalogue, load_catalogue
from launch.settings import Settings, get_settings


@lru_cache
def store():
    from launch.store import Store

    return Store.from_settings(get_settings())


@lru_cache
def calendar() -> WorkCalendar:
    s = get_settings()
    return WorkCalendar.from_file(s.calendar_file, tz=s.timezone)


@lru_cache
def catalogue() -> Catalogue:
    settings = get_settings()
    # Gates behind a setting (a `switch` in the catalogue) are dropped when it is off.
    return load_catalogue(settings.process_file).with_switches({"trial_acceptance": settings.trial_acceptance})


def settings() -> Settings:
    return get_settings()


def now() -> datetime:
    return datetime.now(timezone.utc)


def local(dt: datetime | None) -> str:
    """A timestamp as staff read it: Asia/Shanghai, minutes."""
    if dt is None:
        return ""
    return dt.astimezone(ZoneInfo(get_settings().timezone)).strftime("%Y-%m-%d %H:%M")


@lru_cache
def resources():
    """TRANSITIONAL (issue 11): a Resources over these same singletons, for the callers not yet
    handed one (grep `runtime.resources()`: each is a spot still to convert). Goes with this module."""
    from launch.app.resources import Resources

    return Resources(settings=get_settings(), _store=store(), _calendar=calendar(), _catalogue=catalogue())


def reset() -> None:
    """Forget cached singletons (tests, or after settings changed)."""
    for fn in (store, calendar, catalogue, resources, get_settings):
        fn.cache_clear()
