"""The layout's rules, checked on the source: imports only run down the layers, resources are
built only in composition roots, and Prefect stays in the Prefect adapters.

Every `import` counts, including those inside functions (a lazy import is still an arrow)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

from devtools.layout import LAYERS as _LAYERS
from devtools.layout import readme_with_table

# Bottom to top (devtools/layout.py); a module may import its own layer or a lower one.
LAYERS: list[tuple[str, tuple[str, ...]]] = [(name, prefixes) for name, prefixes, _ in _LAYERS]
PACKAGES = ("launch", "flows", "tasks", "notifiers", "deployments", "devtools")

# Where resources may be built from settings (the successor of the old global locator).
COMPOSITION_ROOTS = ("launch.cli", "launch.receiver.server", "flows.wiring", "deployments", "devtools")
# Where Prefect itself may be imported: its adapters, and `health`, whose job is to ask Prefect's
# own server about its auth, deployments and the watcher's runs.
PREFECT_ADAPTERS = ("launch.orchestration.prefect", "launch.orchestration.connect", "tasks", "flows", "deployments", "launch.cli", "devtools",
                    "launch.app.health")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[_module_name(path)] = path
    return found


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _layer(module: str) -> int | None:
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if module == p or module.startswith(p + "."):
                if best is None or len(p) > best[1]:
                    best = (i, len(p))
    return best[0] if best else None


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this package
                base = module.split(".")[: -node.level] if not path.name == "__init__.py" else module.split(".")[: len(module.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            out.append((node.lineno, target))
            # `from launch import runtime` names a module too
            out += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return out


MODULES = _modules()


def test_every_module_has_a_layer():
    assert [m for m in MODULES if _layer(m) is None] == []


def test_imports_only_run_down_the_layers():
    upward = []
    for module, path in MODULES.items():
        mine = _layer(module)
        for line, target in _imports(path, module):
            if not target.startswith(PACKAGES) or target not in MODULES and not any(
                    m.startswith(target + ".") for m in MODULES):
                continue
            theirs = _layer(target)
            if theirs is not None and theirs > mine:
                upward.append(f"{path.relative_to(ROOT)}:{line} {LAYERS[mine][0]} -> {target} ({LAYERS[theirs][0]})")
    assert upward == []


def test_no_global_locator_and_resources_built_only_in_composition_roots():
    offenders = []
    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if any(t in ("launch.runtime",) for _, t in _imports(path, module)):
            offenders.append(f"{module}: imports launch.runtime")
        if "Resources.from_settings(" in text and not _within(module, COMPOSITION_ROOTS) and module != "launch.app.resources":
            offenders.append(f"{module}: builds Resources.from_settings() outside a composition root")
    assert offenders == []
    assert not (ROOT / "launch" / "runtime.py").exists()


def test_prefect_is_imported_only_by_the_prefect_adapters():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} {target}"
        for module, path in MODULES.items() if not _within(module, PREFECT_ADAPTERS)
        for line, target in _imports(path, module) if target == "prefect" or target.startswith("prefect.")
    ]
    assert offenders == []


def test_the_readme_layout_table_is_generated_from_the_layers():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme == readme_with_table(readme), "run: python -m devtools.layout --write"
