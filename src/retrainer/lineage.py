"""Where a model came from: the git commit, package version and host that produced it."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

from retrainer._version import __version__


@lru_cache(maxsize=8)
def git_commit(directory: str) -> str:
    """The commit of the repository holding `directory` ('+dirty' if it has changes), or 'unknown'."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit


def lineage_tags(
    spec_path: str | None, spec_digest: str, data_digest: str, run_id: str, as_of: str | None
) -> dict[str, str]:
    directory = str(Path(spec_path).parent) if spec_path else "."
    return {
        "retrainer.version": __version__,
        "retrainer.git_commit": git_commit(directory),
        "retrainer.spec_digest": spec_digest,
        "retrainer.data_digest": data_digest,
        "retrainer.run_id": run_id,
        "retrainer.as_of": as_of or "",
        "retrainer.spec_path": spec_path or "",
    }
