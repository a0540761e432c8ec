"""The layering of the developers' guide: geometry and models import nothing above them, evaluation
never imports training, the library never imports its command-line tools. Checked twice: on every
import statement in the source (those inside functions too), and on what importing each part
really loads."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "stnlib"

# Each part of stnlib may import parts of a lower rank only (and itself).
RANK = {
    "errors": 0, "files": 0, "losses": 0, "moments": 0, "version": 0, "plotting": 0,
    "config": 1, "device": 1, "geometry": 1,
    "models": 2, "data": 2, "precision": 2,
    "runs": 3,
    "evaluation": 4,
    "train": 5,
    "ray_sweep": 6,
    "study": 7,
    "explorer": 8,
    "__init__": 9,  # the package's public face: load_run, RunConfig
    "learn": 10, "sweep": 10, "reproduce": 10, "prepare": 10,  # command-line tools
}
COMMAND_LINE_TOOLS = {name for name, rank in RANK.items() if rank == 10}


def part_of(module: str) -> str:
    """``stnlib.models.network`` -> ``models``; ``stnlib`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> tuple[str, str]:
    """(module, the package its relative imports start from) of a source file."""
    dotted = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        dotted = dotted.removesuffix(".__init__")
        return dotted, dotted
    return dotted, dotted.rsplit(".", 1)[0]


def imported_modules(path: Path) -> set[str]:
    """Every stnlib module that ``path`` imports, at the top or inside a function."""
    _, package = module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.add(node.module)
                continue
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            if node.module:
                found.add(".".join(base + [node.module]))
            else:
                found |= {".".join(base + [alias.name]) for alias in node.names}
    return {m for m in found if m == "stnlib" or m.startswith("stnlib.")}


def import_graph() -> dict[str, set[str]]:
    """part -> the other parts it imports."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = part_of(module_name(path)[0])
        graph.setdefault(source, set()).update(part_of(m) for m in imported_modules(path))
    return {source: targets - {source} for source, targets in graph.items()}


def test_every_part_of_the_package_has_a_rank():
    assert set(import_graph()) <= set(RANK), f"give these a rank: {sorted(set(import_graph()) - set(RANK))}"


def test_no_part_imports_a_part_at_its_level_or_above():
    upward = [f"{source} -> {target}" for source, targets in import_graph().items() for target in targets
              if RANK[target] >= RANK[source]]
    assert not upward, upward


def test_the_rules_of_the_guide_hold_in_the_graph():
    graph = import_graph()
    assert graph["geometry"] <= {"errors"}
    assert graph["models"] <= {"errors", "geometry"}
    assert "train" not in graph["evaluation"] and "study" not in graph["evaluation"]
    assert not any(graph[part] & COMMAND_LINE_TOOLS for part in graph if part not in COMMAND_LINE_TOOLS)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text("def f():\n    from ..train import fit\n    import stnlib.study\n")
    relative = PACKAGE / "evaluation" / "sample_probe.py"
    try:
        relative.write_text(source.read_text())
        assert imported_modules(relative) == {"stnlib.train", "stnlib.study"}
        assert {"train", "study"} <= import_graph()["evaluation"]
    finally:
        relative.unlink()


LOADED = """
import importlib, json, sys
def parts():
    return {m.split(".")[1] for m in sys.modules if m.startswith("stnlib.")}
import stnlib
facade = parts()  # what the package itself loads (its errors, RunConfig and version)
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(parts() - facade)))
"""


@pytest.mark.slow
@pytest.mark.parametrize("part", ["geometry", "models", "data", "runs", "evaluation", "train", "study", "explorer"])
def test_importing_a_part_alone_loads_nothing_above_it(part):
    loaded = subprocess.run([sys.executable, "-c", LOADED, f"stnlib.{part}"], capture_output=True, text=True,
                            check=True).stdout
    above = [other for other in json.loads(loaded) if other != part and RANK[other] >= RANK[part]]
    assert not above, f"importing stnlib.{part} loads {above}"
