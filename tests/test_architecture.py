"""The floors of docs/design.md §4, enforced: no import runs up a floor, no import cycle.

Every module under ``robustrec/`` is parsed with ``ast`` (nothing is imported). An import counts
wherever it is written: at module level, in a class or inside a function (a lazy import is still
a dependency). The floor of each package or top-level module is read from the table in
docs/design.md §4, so the table and this test cannot drift apart; a module missing from the table
is a failure too.

Cycles are looked for among module-level imports (those that run when the module is imported;
``if TYPE_CHECKING:`` blocks excluded), across the whole code base: within a package and across
packages. Between packages (and top-level modules) no cycle is allowed at all, lazy imports
included: two packages of one floor (features and captioning, say) depend one way only. Importing ``a.b.c`` also runs ``a/b/__init__.py``; that implicit parent import is not
an edge (a package's ``__init__`` importing its own submodules is the usual Python layout).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "robustrec"


@dataclass(frozen=True)
class Import:
    source: str  # importing module, e.g. robustrec.features.text
    target: str  # imported module (a submodule when `from pkg import submodule`)
    path: str  # file, relative to the root
    line: int
    module_level: bool  # runs when `source` is imported


def floors_from_design(root: Path = ROOT) -> dict[str, int]:
    """``{unit: floor}`` from the table in docs/design.md §4 (rows ``| 3 models | `models` ... |``)."""
    text = (root / "docs" / "design.md").read_text(encoding="utf-8")
    section = text.split("## 4. Floors", 1)[1].split("\n## ", 1)[0]
    floors = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*(\d+)\s+[^|]*\|([^|]*)\|", line)
        if match:
            for name in re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", match.group(2)):
                floors[name] = int(match.group(1))
    assert floors, "docs/design.md §4 has no floors table"
    floors.setdefault(PACKAGE, 0)  # robustrec/__init__.py (the version) is ground: it imports nothing of ours
    return floors


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """``{dotted module name: file}`` of every module of the package."""
    modules = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def unit(module: str) -> str:
    """The floors-table entry of a module: its package under robustrec (``features`` for
    ``robustrec.features.text``), the top-level module (``files``), or ``robustrec`` itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, module_level: bool):
    """(import node, runs at import time) for every import under ``node``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, module_level
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _walk(child, False)
        elif isinstance(child, ast.If) and _is_type_checking(child):
            yield from _walk(child, False)
        else:
            yield from _walk(child, module_level)


def imports(root: Path = ROOT) -> list[Import]:
    """Every import of a robustrec module by a robustrec module, lazy ones included."""
    modules = module_files(root)
    found = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, module_level in _walk(tree, True):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from the importing package
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    package = package[:len(package) - node.level + 1]
                    base = ".".join(package + ([base] if base else []))
                for alias in node.names:  # `from pkg import submodule` imports the submodule
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                if target == PACKAGE or target.startswith(PACKAGE + "."):
                    while target not in modules and "." in target:  # `import a.b.name`: the module a.b
                        target = target.rsplit(".", 1)[0]
                    found.append(Import(name, target, str(path.relative_to(root)), node.lineno, module_level))
    return found


def floor_violations(found: list[Import], floors: dict[str, int]) -> list[str]:
    problems = set()
    for imp in found:
        source, target = floors.get(unit(imp.source)), floors.get(unit(imp.target))
        if source is None:
            problems.add(f"{imp.path}: `{unit(imp.source)}` is not in the floors table of docs/design.md §4")
        elif target is None:
            problems.add(f"{imp.path}:{imp.line} imports {imp.target}: `{unit(imp.target)}` is not in the floors table")
        elif target > source:
            problems.add(f"{imp.path}:{imp.line} ({unit(imp.source)}, floor {source}) imports {imp.target} "
                         f"({unit(imp.target)}, floor {target}){'' if imp.module_level else ' (lazily)'}")
    return sorted(problems)


def cycles(found: list[Import]) -> list[list[str]]:
    """Each group of modules that import one another at module level (strongly connected
    components of more than one module, or a module importing itself), as one cycle path."""
    graph: dict[str, set[str]] = {}
    for imp in found:
        if imp.module_level:
            graph.setdefault(imp.source, set()).add(imp.target)
            graph.setdefault(imp.target, set())
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def connect(node: str) -> None:  # Tarjan, iteratively
        work = [(node, iter(sorted(graph[node])))]
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[current] = min(low[current], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[current])
            if low[current] == index[current]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == current:
                        break
                if len(group) > 1 or current in graph[current]:
                    groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_path(group, graph) for group in sorted(groups)]


def _cycle_path(group: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One closed path through the first module of ``group`` (breadth-first, within the group)."""
    start, members = group[0], set(group)
    previous = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & members):
            if child == start:
                path = [node]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return list(reversed(path)) + [start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    return group


def unit_imports(found: list[Import]) -> list[Import]:
    """The imports between different packages / top-level modules, lazy ones counted as running."""
    return [Import(f"{PACKAGE}.{unit(imp.source)}", f"{PACKAGE}.{unit(imp.target)}", imp.path, imp.line, True)
            for imp in found if unit(imp.source) != unit(imp.target)]


def architecture_problems(root: Path = ROOT) -> list[str]:
    found = imports(root)
    problems = floor_violations(found, floors_from_design(root))
    problems += ["module-level import cycle: " + " -> ".join(cycle) for cycle in cycles(found)]
    problems += ["cycle between packages (lazy imports included): " + " -> ".join(cycle)
                 for cycle in cycles(unit_imports(found))]
    return problems


def test_no_import_runs_up_a_floor_and_no_cycle():
    problems = architecture_problems()
    assert not problems, (f"{len(problems)} architecture problem(s) (docs/design.md §4):\n"
                          + "\n".join(problems))


def test_the_checker_sees_lazy_imports_cycles_and_unknown_units(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "design.md").write_text(
        "## 4. Floors\n\n| floor | packages |\n|---|---|\n| 0 ground | `files` |\n| 1 data | `data` |\n\n## 5. Next\n")
    package = tmp_path / PACKAGE
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "files.py").write_text("def f():\n    from robustrec.data import a\n")
    (package / "data" / "__init__.py").write_text("")
    (package / "data" / "a.py").write_text("from robustrec.data import b\n")
    (package / "data" / "b.py").write_text("from robustrec.data.a import x\nimport robustrec.extra\n")
    (package / "extra.py").write_text("def g():\n    import robustrec.files\n")
    problems = architecture_problems(tmp_path)
    assert any("files.py:2 (files, floor 0) imports robustrec.data.a (data, floor 1) (lazily)" in p
               for p in problems), problems
    assert "module-level import cycle: robustrec.data.a -> robustrec.data.b -> robustrec.data.a" in problems
    assert any("`extra` is not in the floors table" in p for p in problems), problems
    assert ("cycle between packages (lazy imports included): robustrec.data -> robustrec.extra -> robustrec.files "
            "-> robustrec.data") in problems, problems
