"""Resources for tests: explicit settings, a store of its own, a clock the test moves."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from launch.app import FixedClock, Resources
from launch.settings import Settings


def make_resources(home: Path, *, clock: Any = None, orchestrator: Any = None, notifier: Any = None,
                   **settings: Any) -> Resources:
    """A Resources over a SQLite store in `home` (or `database_url=`), with these settings.

    Settings given here win over WEAPP_LAUNCH_* in the environment (pydantic-settings' order)."""
    s = Settings(home=home, **settings)
    return Resources(settings=s, clock=clock or FixedClock(datetime(2026, 10, 12, 2, 0, tzinfo=timezone.utc)),
                     _orchestrator=orchestrator, _notifier=notifier)
