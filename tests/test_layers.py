"""The house's rules, read from the source with `ast` (ARCHITECTURE.md,
"Layers"): imports run downwards only, no Python import circles, and no
class grows past about 300 lines without a reason written at its top.

Every import counts, also one inside a function (a lazy import is still an
arrow). The checks are plain functions so that the tests below can show
each of them catching a bad graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

# Layer of each top-level part of the package, lowest first. A module may
# import its own package and anything of a lower layer; two different
# packages on one layer (mmu, net) may not import each other.
LAYERS: dict[str, int] = {
    "emu": 0, "emu._fast": 0, "emu.core": 0,
    "emu.mmu": 1, "emu.net": 1,
    "emu.devices": 2,
    "emu.machine": 3,
    "emu.guestview": 4,
    "emu.tools": 5,
    "emu.debug": 6,
    "emu.cli": 7,
    "emu.__main__": 8,
}
LONG_CLASS = 300
LONG_CLASS_REASON = "Why this class is long:"


def module_name(path: Path, root: Path) -> str:
    """`emu/machine/cpu.py` -> `emu.machine.cpu`; a package's __init__ is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_modules(root: Path) -> dict[str, ast.Module]:
    """Every .py file of the emu package under `root`, parsed."""
    return {module_name(p, root): ast.parse(p.read_text(), str(p))
            for p in sorted((root / "emu").rglob("*.py"))}


def _typing_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:` (they never run)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            out.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return out


def imports_of(name: str, tree: ast.Module, known: set[str], typing: bool = True) -> set[str]:
    """The emu modules `tree` (module `name`) imports, anywhere in its body;
    with typing=False, not those under `if TYPE_CHECKING:` (they never run,
    so they make no circle - but they must still point downwards).
    `from pkg import sub` counts as an import of pkg.sub when that is a module."""
    out: set[str] = set()
    pkg = name if (name in known and any(k.startswith(name + ".") for k in known)) \
        else name.rpartition(".")[0]
    skip = set() if typing else _typing_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "emu")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "emu":
                continue
            subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in known]
            out.update(subs)
            if len(subs) < len(node.names):
                out.add(mod)
    out.discard(name)
    return {m for m in out if m in known}


def layer_of(module: str) -> tuple[str, int]:
    """(the part of LAYERS `module` belongs to, its layer)."""
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    return best, LAYERS[best]


def upward_arrows(graph: dict[str, set[str]]) -> list[str]:
    """Imports that run up, or sideways between two packages of one layer."""
    bad = []
    for mod, deps in sorted(graph.items()):
        part, rank = layer_of(mod)
        for dep in sorted(deps):
            dpart, drank = layer_of(dep)
            same_part = dpart == part or dpart == "emu"
            if drank > rank or (drank == rank and not same_part and rank != 0) or \
                    (rank == 0 and drank == 0 and dpart not in (part, "emu", "emu._fast")):
                bad.append(f"{mod} ({part}, layer {rank}) imports {dep} ({dpart}, layer {drank})")
    return bad


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of `graph` (strongly connected components of more
    than one module, or a module importing itself), Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def long_classes(modules: dict[str, ast.Module]) -> list[str]:
    """Classes over LONG_CLASS lines whose docstring gives no reason."""
    bad = []
    for mod, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                doc = ast.get_docstring(node) or ""
                if n > LONG_CLASS and LONG_CLASS_REASON not in doc:
                    bad.append(f"{mod}.{node.name}: {n} lines")
    return bad


def the_graph(typing: bool = True) -> tuple[dict[str, ast.Module], dict[str, set[str]]]:
    modules = read_modules(REPO)
    known = set(modules)
    return modules, {m: imports_of(m, t, known, typing) for m, t in modules.items()}


# -- the house -------------------------------------------------------------------

def test_every_module_has_a_layer_and_says_so():
    modules, _ = the_graph()
    missing = []
    for mod, tree in modules.items():
        part, _rank = layer_of(mod)
        doc = ast.get_docstring(tree) or ""
        if part not in ("emu", "emu._fast") and mod not in ("emu.__main__",) \
                and "Layer:" not in doc and not mod.endswith("__init__"):
            missing.append(mod)
    assert not missing, "module docstrings without a 'Layer:' line: " + ", ".join(missing)


def test_imports_run_downwards_only():
    _, graph = the_graph()
    assert not upward_arrows(graph), "\n".join(upward_arrows(graph))


def test_no_import_circles():
    _, graph = the_graph(typing=False)
    assert not circles(graph), circles(graph)


def test_the_machine_never_imports_a_tool_or_the_face():
    _, graph = the_graph()
    above = ("emu.guestview", "emu.tools", "emu.debug", "emu.cli")
    for mod, deps in graph.items():
        if layer_of(mod)[1] <= LAYERS["emu.machine"]:
            assert not [d for d in deps if d.startswith(above)], mod


def test_no_class_over_300_lines_without_a_reason():
    modules, _ = the_graph()
    assert not long_classes(modules), long_classes(modules)


# -- the checks catch what they should ---------------------------------------------

def test_checks_catch_an_upward_arrow_a_sideways_one_and_a_circle():
    graph = {"emu.machine.machine": {"emu.tools.report"},        # up
             "emu.mmu.walk": {"emu.net.frames"},                  # sideways on one layer
             "emu.tools.report": {"emu.machine.machine"},
             "emu.net.frames": set(),
             "emu.debug.a": {"emu.debug.b"}, "emu.debug.b": {"emu.debug.a"}}   # a circle
    arrows = upward_arrows(graph)
    assert any(a.startswith("emu.machine.machine") for a in arrows)
    assert any(a.startswith("emu.mmu.walk") for a in arrows)
    assert not any(a.startswith("emu.tools.report") for a in arrows)
    assert sorted(map(tuple, circles(graph))) == [("emu.debug.a", "emu.debug.b"),
                                                 ("emu.machine.machine", "emu.tools.report")]


def test_lazy_and_package_imports_are_arrows():
    src = ("def f():\n    from emu.tools import report\n"
           "from emu.machine import board\nimport emu.cli.main\n"
           "if TYPE_CHECKING:\n    from emu.debug import control\n")
    known = {"emu.tools", "emu.tools.report", "emu.machine", "emu.machine.board",
             "emu.cli", "emu.cli.main", "emu.debug", "emu.debug.control", "emu.x"}
    runtime = {"emu.tools.report", "emu.machine.board", "emu.cli.main"}
    assert imports_of("emu.x", ast.parse(src), known) == runtime | {"emu.debug.control"}
    assert imports_of("emu.x", ast.parse(src), known, typing=False) == runtime


def test_long_class_check_wants_a_reason():
    body = "\n".join(f"    x{i} = {i}" for i in range(LONG_CLASS + 5))
    plain = ast.parse(f"class Big:\n    '''A class.'''\n{body}\n")
    reasoned = ast.parse(f"class Big:\n    '''A class. {LONG_CLASS_REASON} it is.'''\n{body}\n")
    assert long_classes({"m": plain}) == [f"m.Big: {LONG_CLASS + 7} lines"]
    assert long_classes({"m": reasoned}) == []
