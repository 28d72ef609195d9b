"""The product's own local stack (devtools/stack.py), and the Resources a test process builds
over whatever stack its environment points at."""

from __future__ import annotations

from devtools.stack import ROOT, Stack, free_port, wait_http  # noqa: F401  (tests use the product's own stack)
from launch.app import Resources
from launch.orchestration.connect import refresh_in_process_settings  # noqa: F401
from launch.settings import Settings

_OPEN: dict[str, Resources] = {}


def stack_resources() -> Resources:
    """The Resources of the stack this process points at now (after Stack.apply_env() or a
    module's own stack environment): settings read from WEAPP_LAUNCH_* as an entry point reads
    them. One per distinct environment, kept open (its store's engine) until close_resources()."""
    settings = Settings()
    key = settings.model_dump_json()
    if key not in _OPEN:
        _OPEN[key] = Resources(settings=settings)
    return _OPEN[key]


def close_resources() -> None:
    """Close every Resources stack_resources() built (a stack going away takes its database along)."""
    while _OPEN:
        _, res = _OPEN.popitem()
        try:
            res.close()
        except Exception:  # noqa: BLE001 - its database may be gone already
            pass
