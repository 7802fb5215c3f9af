"""No module imports one that imports it back, in any of the project's packages.

`make lint` checks the layers with import-linter (contracts in pyproject.toml);
this checks every module of every package, one import at a time.
"""

from __future__ import annotations

import grimp

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
