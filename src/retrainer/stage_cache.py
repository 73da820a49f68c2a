"""The stage cache: a stage's key, and the manifest that marks its outputs complete in the run store.

A stage's cache key hashes its name, its code, its spec sections, its inputs' digests and (for
extract) the source's fingerprint. Outputs are saved under the key (or under the run, for a stage
that is done once per run: register, promote) and the manifest is written last, so an entry
without one is a crash's leftover, never a hit.
"""

from __future__ import annotations

import hashlib
import posixpath
from dataclasses import asdict
from typing import Any

from retrainer.errors import RetrainerError
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.store import ArtifactRef, ParquetFile


def manifest_refs(manifest: dict[str, Any]) -> dict[str, ArtifactRef]:
    return {name: ArtifactRef(**ref) for name, ref in manifest["artifacts"].items()}


def cache_key(stage: Stage, ctx: RunContext, refs: dict[str, ArtifactRef]) -> str:
    """Hash of everything a stage's outputs depend on (see the module docstring)."""
    parts = [stage.name, stage.code_version(), ctx.spec.section_digest(*stage.spec_sections)]
    parts += [f"{name}={refs[name].digest}" for name in stage.needs if name in refs]
    if stage.fingerprint is not None:
        parts.append(stage.fingerprint(ctx))
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def save_outputs(
    stage: Stage, ctx: RunContext, key: str, output: StageOutput, refs: dict[str, ArtifactRef], loaded: dict[str, Any]
) -> None:
    missing = set(stage.makes) - output.artifacts.keys()
    if missing:
        raise RetrainerError(f"stage {stage.name} did not return {sorted(missing)}")
    directory = (
        ctx.store.cache_dir(stage.name, key)
        if stage.cacheable
        else posixpath.join(ctx.store.run_dir(ctx.run_id), stage.name)
    )
    saved = {name: ctx.store.save_artifact(directory, name, value) for name, value in output.artifacts.items()}
    refs.update(saved)
    # a file a stage streamed itself is read back from the store by the stages that need it
    loaded.update({name: value for name, value in output.artifacts.items() if not isinstance(value, ParquetFile)})
    manifest = {
        "stage": stage.name,
        "key": key,
        "run_id": ctx.run_id,
        "summary": output.summary,
        "metrics": output.metrics,
        "artifacts": {n: asdict(r) for n, r in saved.items()},
    }
    # the manifest is written last: it marks the entry complete
    if stage.cacheable:
        ctx.store.write_manifest(stage.name, key, manifest)
    else:  # done once per run: a retried task does not register or promote twice
        ctx.store.write_json(posixpath.join(directory, "manifest.json"), manifest)


def read_manifest(stage: Stage, ctx: RunContext, key: str) -> dict[str, Any] | None:
    if stage.cacheable:
        return ctx.store.read_manifest(stage.name, key)
    path = posixpath.join(ctx.store.run_dir(ctx.run_id), stage.name, "manifest.json")
    try:
        manifest: dict[str, Any] = ctx.store.read_json(path)
    except FileNotFoundError:
        return None
    return manifest if manifest.get("key") == key else None
