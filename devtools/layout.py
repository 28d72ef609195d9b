"""The project's layers, bottom to top: one place that the architecture tests check the
imports against and that the README's "where each concern lives" table is generated from.

    python -m devtools.layout          # print the README table
    python -m devtools.layout --write  # rewrite it in README.md (between the layout markers)

A module may import its own layer or a lower one, never a higher one.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (layer, module prefixes, what lives there)
LAYERS: list[tuple[str, tuple[str, ...], str]] = [
    ("domain", ("launch.domain",),
     "pure core, no I/O: intake model, preflight rules, the process catalogue (gates, forms, branch phases, "
     "deadlines), forms, working-day calendar, plan, alert ladders, masking, profile limits, go-live forecast, "
     "vocabularies"),
    ("infrastructure", ("launch.settings", "launch.store", "launch.wechat"),
     "settings (WEAPP_LAUNCH_*); the store: a unit of work over one repository per aggregate, Alembic "
     "migrations, field encryption; WeChat's push protocol (signatures, AES, XML/JSON events)"),
    ("adapters", ("launch.orchestration", "notifiers"),
     "the orchestrator port and its Prefect adapter (start, read, resume, artifacts) and deployment names; "
     "Apprise channels with idempotency keys, retries, fallback, circuit breaker"),
    ("application", ("launch.app",),
     "Resources (store, clock, calendar, catalogue, settings, orchestrator, notifier) and the services every "
     "entry point uses: decisions, launches, the push inbox, signed links, activities, artifacts, the watcher, "
     "forecasts, the portfolio report, health"),
    ("process", ("launch.process",),
     "flow logic as plain Python against the Steps port (registration, filing, design, review and release "
     "loops) and the in-memory orchestrator its tests run on"),
    ("tasks", ("tasks",), "Prefect tasks: one line per activity, retries and cache policy from the port's table"),
    ("flows", ("flows",), "Prefect flows binding the process to tasks and suspends; `flows/wiring.py` is the "
     "Prefect processes' composition root"),
    ("entry points", ("deployments", "launch.receiver"),
     "`serve()` and the deployments of `prefect.yaml`; the HTTP receiver (WeChat pushes, staff links, "
     "`/report`) as a FastAPI app with auth and body limits as dependencies"),
    ("dev tooling", ("devtools",), "not needed to run launches: local stack, demo, scripted outside world, "
     "local alert sinks, this layer list"),
    ("cli", ("launch.cli", "launch.__main__", "launch"), "the `weapp-launch` command: a composition root "
     "building `Resources.from_settings()` once per command"),
]

START, END = "<!-- layout:start (python -m devtools.layout --write) -->", "<!-- layout:end -->"


def folder_of(prefix: str) -> str | None:
    path = ROOT / prefix.replace(".", "/")
    if path.is_dir():
        return f"{prefix.replace('.', '/')}/"
    if path.with_suffix(".py").is_file() and prefix != "launch.__main__":
        return f"{prefix.replace('.', '/')}.py"
    return None


def render_table() -> str:
    lines = ["| layer | path | what |", "|---|---|---|"]
    for i, (name, prefixes, what) in enumerate(LAYERS):
        paths = [folder_of(p) for p in prefixes if p != "launch"]
        shown = ", ".join(f"`{p}`" for p in paths if p)
        lines.append(f"| {i} {name} | {shown} | {what} |")
    return "\n".join(lines)


def readme_with_table(text: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{render_table()}\n{END}{tail}"


if __name__ == "__main__":
    if "--write" in sys.argv:
        readme = ROOT / "README.md"
        readme.write_text(readme_with_table(readme.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(render_table())
