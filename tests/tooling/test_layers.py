"""No module imports one that imports it back, in any of the project's packages.

`make lint` checks the layers with import-linter (contracts in pyproject.toml);
this checks every module of every package, one import at a time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]

PACKAGES = ("infra", "components", "coldreach", "policies", "openapi_server")


def cycles(graph: grimp.ImportGraph) -> list[tuple[str, ...]]:
    """One cycle per import that closes one: the import, then the way back."""
    found: list[tuple[str, ...]] = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                found.append((importer, *back))
    return found


def test_no_module_is_part_of_an_import_cycle() -> None:
    assert cycles(grimp.build_graph(*PACKAGES)) == []


def test_a_cycle_is_found() -> None:
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    assert cycles(graph) == []
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert ("pkg.a", "pkg.b", "pkg.c", "pkg.a") in cycles(graph)


def test_the_pack_loads_without_the_tooling_the_program_or_the_app() -> None:
    """Every module of the pack imports with the rest of the repository unimportable
    (`__main__` aside: it serves the pack and never returns)."""
    blocked = ("coldreach", "infra", "components", "openapi_server")
    script = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None  # any import of it raises ImportError\n"
        "import importlib, pkgutil, policies\n"
        "for module in pkgutil.iter_modules(policies.__path__):\n"
        "    if module.name != '__main__':\n"
        "        importlib.import_module(f'policies.{module.name}')\n"
        "from policies import catalog, resource_types\n"
        "print(len(catalog.rules()), len(resource_types.TYPES))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    rules, types = (int(n) for n in done.stdout.split())
    assert rules > 50 and types > 40
