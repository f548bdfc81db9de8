"""The shape of the code: import arrows run one way, modules stay small, service/ is folders.

Read from the source with ``ast`` (nothing is imported), over ``service/``, ``alerts/`` and
``parsers/`` (migrations excluded). Every import counts: at module level, inside functions,
under ``TYPE_CHECKING``, and ``importlib.import_module`` / ``__import__`` with a constant
name, because each of them is an arrow a reader must follow and any of them can close a cycle.

- No cycle in the module import graph; a failure prints each cycle as arrows with the names
  imported along them.
- The intended direction (``cli → tools → bootstrap/daemon → api → ingest → notify → db →
  runtime → alerts → parsers``): each rule below names what a part must not import.
- No module over 400 lines; at most four loose modules in ``service/``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("service", "alerts", "parsers")
MAX_LINES = 400
MAX_LOOSE_MODULES = 4


@dataclass(frozen=True)
class Arrow:
    """One import statement: ``source`` imports ``target`` (a module of ours) at ``line``."""

    source: str
    target: str
    line: int
    names: tuple[str, ...]  # what was imported from the target, or the target itself

    def __str__(self) -> str:
        return f"{self.source} → {self.target} (line {self.line}: {', '.join(self.names)})"


def _source_files() -> dict[str, Path]:
    """Module name → file, for every module of the three packages outside migrations."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = _source_files()


def _ours(name: str) -> str | None:
    """The longest module of ours that ``name`` is or lies in (``a.b.C`` → ``a.b``)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``from … import`` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, node.module] if node.module else base)


def _dynamic_import(node: ast.Call) -> str | None:
    """The constant name of ``importlib.import_module("x")``, ``import_module("x")`` or
    ``__import__("x")``; None for any other call."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def _arrows_of(module: str, source: str | None = None) -> Iterator[Arrow]:
    """The arrows out of ``module`` (read from its file, or from ``source``)."""
    tree = ast.parse(source if source is not None else MODULES[module].read_text("utf-8"))
    for node in ast.walk(tree):
        found: list[tuple[str, str]] = []  # (imported module, name shown)
        if isinstance(node, ast.Import):
            found = [(alias.name, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            for alias in node.names:
                # ``from pkg import sub`` imports the submodule when there is one.
                submodule = f"{base}.{alias.name}"
                found.append((submodule if submodule in MODULES else base, alias.name))
        elif isinstance(node, ast.Call) and (name := _dynamic_import(node)):
            found = [(name, f"import_module({name!r})")]
        targets: dict[str, list[str]] = {}
        for imported, shown in found:
            target = _ours(imported)
            if target is not None and target != module:
                targets.setdefault(target, []).append(shown)
        for target, names in targets.items():
            yield Arrow(module, target, node.lineno, tuple(names))  # type: ignore[attr-defined]


ARROWS = [arrow for module in MODULES for arrow in _arrows_of(module)]


def _cycles(arrows: list[Arrow]) -> list[tuple[list[str], list[Arrow]]]:
    """Each strongly connected component of more than one module (Tarjan's algorithm,
    iterative) with one concrete cycle through it, as the arrows around it."""
    graph: dict[str, dict[str, Arrow]] = {module: {} for module in MODULES}
    for arrow in arrows:
        graph[arrow.source].setdefault(arrow.target, arrow)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return [(component, _cycle_in(graph, set(component))) for component in components]


def _cycle_in(graph: dict[str, dict[str, Arrow]], component: set[str]) -> list[Arrow]:
    """The shortest cycle through the component's first module (breadth-first)."""
    start = min(component)
    came_from: dict[str, Arrow] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target, arrow in sorted(graph[node].items()):
                if target not in component:
                    continue
                if target == start:
                    path = [arrow]
                    while path[0].source != start:
                        path.insert(0, came_from[path[0].source])
                    return path
                if target not in came_from:
                    came_from[target] = arrow
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle found in the component {sorted(component)}")


def test_the_import_graph_has_no_cycle() -> None:
    cycles = _cycles(ARROWS)
    report = "\n\n".join(
        f"{len(component)} modules import each other ({', '.join(component)}); one cycle:\n"
        + "\n".join(f"  {arrow}" for arrow in cycle)
        for component, cycle in cycles
    )
    assert not cycles, f"{len(cycles)} import cycle(s):\n\n{report}"


def _part(module: str) -> str:
    """The part of the architecture a module belongs to: ``alerts``, ``parsers``, or the
    service sub-package (``service.ingest``) or loose module (``service.bootstrap``)."""
    parts = module.split(".")
    if parts[0] != "service":
        return parts[0]
    return ".".join(parts[:2])


def _service(*names: str) -> set[str]:
    return {f"service.{name}" for name in names}


ALL_SERVICE = {_part(m) for m in MODULES if m.startswith("service.")} | {"service"}

# (the part, what it must not import, why)
RULES = [
    ("alerts", ALL_SERVICE, "the clinical core is pure: no shell below it"),
    ("parsers", ALL_SERVICE | {"alerts"}, "the parsers are the bottom of the graph"),
    (
        "service.runtime",
        ALL_SERVICE - {"service.runtime"},
        "runtime is the service's foundation: it imports nothing of the service but itself",
    ),
    (
        "service.db",
        _service("ingest", "notify", "api", "cli", "tools", "bootstrap", "daemon"),
        "storage knows nothing of who stores",
    ),
    (
        "service.notify",
        _service("ingest", "api", "cli", "tools", "bootstrap", "daemon"),
        "notify is below ingest and the API (the pipeline queues notifications, not the reverse)",
    ),
    (
        "service.ingest",
        _service("api", "cli", "tools", "bootstrap", "daemon"),
        "ingest is wired by bootstrap and run by the daemon, never the reverse",
    ),
    ("service.api", _service("cli", "tools"), "the API is below the CLI and the tools"),
]


@pytest.mark.parametrize(("part", "forbidden", "why"), RULES, ids=[rule[0] for rule in RULES])
def test_imports_run_one_way(part: str, forbidden: set[str], why: str) -> None:
    wrong = [
        arrow
        for arrow in ARROWS
        if _part(arrow.source) == part
        and (_part(arrow.target) in forbidden or arrow.target in forbidden)
    ]
    report = "\n".join(f"  {arrow}" for arrow in wrong)
    assert not wrong, f"{part} must not import {sorted(forbidden)} ({why}):\n{report}"


def test_no_module_is_over_400_lines() -> None:
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in _source_files().values()  # read afresh: files move while others work
    }
    over = sorted(((n, name) for name, n in sizes.items() if n > MAX_LINES), reverse=True)
    report = "\n".join(f"  {name}: {n} lines" for n, name in over)
    assert not over, f"modules over {MAX_LINES} lines (split them by concept):\n{report}"


def test_service_is_folders_with_few_loose_modules() -> None:
    loose = sorted(path.name for path in (ROOT / "service").glob("*.py"))
    assert len(loose) <= MAX_LOOSE_MODULES, f"loose modules in service/: {loose}"


def test_the_graph_is_read_from_every_kind_of_import() -> None:
    """The reader itself: a module-level, a function-level, a TYPE_CHECKING and a relative
    import, a constant import_module and an __import__ all make arrows (else the cycle test
    could pass vacuously)."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "import importlib\n"
        "import alerts.model\n"
        "from . import settings\n"
        "if TYPE_CHECKING:\n"
        "    from service.db.models import Alert, Patient\n"
        "def f():\n"
        "    from parsers import errors\n"
        "    importlib.import_module('service.bootstrap')\n"
        "    __import__('service.daemon')\n"
    )
    arrows = {arrow.target: arrow.names for arrow in _arrows_of("service.runtime.clock", source)}
    assert arrows == {
        "alerts.model": ("alerts.model",),
        "service.runtime.settings": ("settings",),
        "service.db.models": ("Alert", "Patient"),
        "parsers.errors": ("errors",),
        "service.bootstrap": ("import_module('service.bootstrap')",),
        "service.daemon": ("import_module('service.daemon')",),
    }
    assert len(ARROWS) > 100
