"""The code's import graph: no module of kagiban, device, hub or demo imports itself back through
others, not even through an import inside a function or under TYPE_CHECKING; hub/ keeps its
top level small (the rooms are its sub-packages); hardware libraries are imported only inside
their adapters.

Imports are read from the source (every ``import`` statement anywhere in a module), so a
lazy import that only runs on some path counts as much as one at the top.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("kagiban", "device", "hub", "demo")
HUB_TOP_LEVEL_MAX = 10
# Hardware libraries and the one module of each allowed to import them.
HARDWARE = {
    "gpiozero": {"device.sensors.pins", "device.sensors.door", "device.outputs"},
    "nfc": {"device.sensors.nfc_reader"},
    "picamera2": {"device.camera.picamera"},
    "lgpio": {"device.sensors.pins"},
}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package), for every module of PACKAGES (migrations excepted:
    Alembic loads them by path)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if "migrations" in parts:
                continue
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            found[".".join(parts)] = (path, is_package)
    return found


def _imported(module: str, path: Path, is_package: bool) -> set[str]:
    """Every dotted name ``module`` imports (absolute; relative imports resolved)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (``from a import b`` counts a.b if it is one)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        edges = set()
        for target in _imported(name, path, is_package):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_circle_of_three_and_ignores_a_chain():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_module_imports_itself_back_through_others():
    graph = _graph()
    assert "hub.service" in graph and "device.agent" in graph  # the walk found the code
    circles = _cycles(graph)
    described = [" <-> ".join(circle) + ": " + "; ".join(
        f"{m} imports {sorted(graph[m] & set(circle))}" for m in circle) for circle in circles]
    assert described == []


def test_hub_keeps_at_most_ten_modules_beside_its_sub_packages():
    top = sorted(p.name for p in (REPO / "hub").glob("*.py") if p.name != "__init__.py")
    assert len(top) <= HUB_TOP_LEVEL_MAX, top


def test_hardware_libraries_are_imported_only_inside_their_adapters():
    modules = _modules()
    misplaced = []
    for name, (path, is_package) in modules.items():
        for target in _imported(name, path, is_package):
            library = target.split(".")[0]
            if library in HARDWARE and name not in HARDWARE[library]:
                misplaced.append(f"{name} imports {target}")
    assert misplaced == []
