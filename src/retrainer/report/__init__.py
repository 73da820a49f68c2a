"""The run report: one self-contained HTML file (images embedded) that says what was decided and why.

`write_report(store, run_id)` reads the run's record (`runs/<id>/run.json`, which lists each stage
and its cache key), loads every artifact those stages made, draws the plots and writes
`runs/<id>/report.html`. The executor calls it when a run ends; `retrainer report RUN_ID` calls it
for any past run. Sections, in order: decision and reason, data quality, drift, tuning history,
metrics with confidence intervals, slices, fairness, explanation, readiness, lineage.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrainer.spec import Spec
    from retrainer.store import RunStore

SECTIONS = (
    "Decision",
    "Data quality",
    "Drift",
    "Tuning history",
    "Metrics",
    "Slices",
    "Fairness",
    "Explanation",
    "Readiness",
    "Lineage",
)


class RunArtifacts(Mapping[str, Any]):
    """Every artifact of one run by name, read from the store on first use."""

    def __init__(self, store: RunStore, record: dict[str, Any]) -> None:
        from retrainer.store import ArtifactRef

        self._store = store
        self._loaded: dict[str, Any] = {}
        self.refs: dict[str, ArtifactRef] = {}
        self.manifests: dict[str, dict[str, Any]] = {}
        run_dir = store.run_dir(record["run_id"])
        for stage in record.get("stages", []):
            if stage.get("status") not in ("ran", "cached") or not stage.get("key"):
                continue
            for path in (
                posixpath.join(run_dir, stage["name"], "manifest.json"),
                posixpath.join(store.cache_dir(stage["name"], stage["key"]), "manifest.json"),
            ):
                try:
                    manifest = store.read_json(path)
                except FileNotFoundError:
                    continue
                if manifest.get("key") == stage["key"]:
                    self.manifests[stage["name"]] = manifest
                    self.refs.update({n: ArtifactRef(**r) for n, r in manifest["artifacts"].items()})
                    break
        for rejected in ("fairness", "readiness"):  # a rejected stage leaves its evidence in the run directory
            if rejected not in self.refs:
                with contextlib.suppress(FileNotFoundError):
                    self._loaded[rejected] = store.read_json(posixpath.join(run_dir, f"{rejected}.json"))

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            if name not in self.refs:
                raise KeyError(name)
            self._loaded[name] = self._store.load_artifact(self.refs[name])
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter({*self.refs, *self._loaded})

    def __len__(self) -> int:
        return len({*self.refs, *self._loaded})


def report_path(store: RunStore, run_id: str) -> str:
    return posixpath.join(store.run_dir(run_id), "report.html")


def write_report(store: RunStore, run_id: str, spec: Spec | None = None, out: str | None = None) -> str:
    """Build the report of `run_id` and write it (default `runs/<id>/report.html`); return where."""
    from retrainer.report.html import render
    from retrainer.report.plots import PlotCache
    from retrainer.run_lock import settled

    record = settled(store, store.read_run(run_id))  # a killed run reads "interrupted", not "running"
    if spec is None:
        spec = _spec_of(record)
    artifacts = RunArtifacts(store, record)
    page = render(record, artifacts, spec, PlotCache(store, {name: ref.digest for name, ref in artifacts.refs.items()}))
    target = out or report_path(store, run_id)
    if out:
        from pathlib import Path

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(page, encoding="utf-8")
    else:
        store.write_bytes(target, page.encode("utf-8"))
    return target


def _spec_of(record: dict[str, Any]) -> Spec | None:
    """The run's spec, if its file is still where the run read it (plots that need the target use it)."""
    from retrainer.errors import RetrainerError
    from retrainer.spec import load_spec

    path = record.get("spec_path")
    if not path:
        return None
    try:
        return load_spec(path)
    except RetrainerError:
        return None


__all__ = ["SECTIONS", "RunArtifacts", "report_path", "write_report"]
