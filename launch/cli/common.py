"""What every command of the CLI shares: its Resources (built once per command), the
consoles, JSON output and the bilingual failure line.

The CLI is a composition root: each command takes Typer's context and asks
:func:`resources` for its Resources, which builds ``Resources.from_settings()`` (the
WEAPP_LAUNCH_* settings) the first time, keeps it for the rest of that command and closes it
when the command ends. A caller may hand its own in instead —
``CliRunner().invoke(app, args, obj=res)`` — as the tests do; that one is never closed here.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from launch.app import Resources

__all__ = ["emit_json", "err", "fail", "out", "resources"]

_KEY = "weapp_launch.resources"

# Piped output (CI logs, less) gets a wide table rather than Rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def resources(ctx: typer.Context) -> Resources:
    """The running command's Resources (see the module docstring)."""
    root = ctx.find_root()
    if isinstance(root.obj, Resources):
        return root.obj
    res = root.meta.get(_KEY)
    if res is None:
        res = root.meta[_KEY] = Resources.from_settings()
        root.call_on_close(res.close)
    return res


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def fail(message: str, code: int = 1, as_json: bool = False, **extra: Any) -> None:
    """Print the message (JSON when asked) and exit with ``code``."""
    if as_json:
        emit_json({"ok": False, "error": message, **extra})
    else:
        err.print(f"[red]{escape(message)}[/red]")
    raise typer.Exit(code)
