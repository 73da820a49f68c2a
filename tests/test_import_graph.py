"""retrainer's modules import each other without cycles; imports inside functions and TYPE_CHECKING count.

A cycle closed by a function-level import still ties two layers together: a stage that called back
into its executor could not run under another one. KNOWN_CYCLE_IMPORTS are the imports that still
close a cycle, each with what removes it: the test fails on any other cycle, and on a listed import
that no longer exists (strike it from the list).
"""

from __future__ import annotations

import grimp
import pytest

# (importer, imported) -> what removes it; empty: no import closes a cycle today
KNOWN_CYCLE_IMPORTS: dict[tuple[str, str], str] = {}


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, imported = work[-1]
            step = next(imported, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph.find_modules_directly_imported_by(step)))))
                elif step in on_stack:
                    low[module] = min(low[module], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def describe(graph: grimp.ImportGraph, component: list[str]) -> str:
    members = set(component)
    lines = [f"cycle among {', '.join(component)}:"]
    for importer in component:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
            details = graph.get_import_details(importer=importer, imported=imported)
            at = ", ".join(f"l.{detail['line_number']}" for detail in details)
            lines.append(f"  {importer} -> {imported} ({at})")
    return "\n".join(lines)


def test_no_import_cycle_among_retrainers_modules_but_the_known_ones() -> None:
    graph = grimp.build_graph("retrainer", cache_dir=None)
    gone = [edge for edge in KNOWN_CYCLE_IMPORTS if not graph.direct_import_exists(importer=edge[0], imported=edge[1])]
    assert not gone, f"no longer imported: strike from KNOWN_CYCLE_IMPORTS: {gone}"
    for importer, imported in KNOWN_CYCLE_IMPORTS:
        graph.remove_import(importer=importer, imported=imported)

    found = cycles(graph)

    assert not found, "\n".join(describe(graph, component) for component in found)


def test_the_cycle_finder_finds_a_cycle_closed_by_a_function_level_import() -> None:
    graph = grimp.ImportGraph()
    graph.add_import(importer="pkg.executor", imported="pkg.stages", line_number=1, line_contents="import")
    graph.add_import(importer="pkg.stages", imported="pkg.pipeline", line_number=1, line_contents="import")
    graph.add_import(importer="pkg.stages", imported="pkg.executor", line_number=9, line_contents="    import")

    assert cycles(graph) == [["pkg.executor", "pkg.stages"]]


def test_a_dag_file_exported_before_the_exporters_moved_still_finds_its_task_functions() -> None:
    """DAG files written by an earlier `retrainer airflow export` import `retrainer.integrations.airflow`."""
    from retrainer.exporters import airflow as exporter
    from retrainer.integrations import airflow as old_path

    with pytest.warns(DeprecationWarning, match="re-export this DAG"):
        run_task = old_path.run_task
    assert run_task is exporter.run_task
    with pytest.raises(AttributeError), pytest.warns(DeprecationWarning):
        _ = old_path.no_such_task
