"""The docs site builds in strict mode (a broken link or reference fails), with the generated pages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strict_with_the_generated_references(tmp_path: Path) -> None:
    mkdocs = str(Path(sys.executable).parent / "mkdocs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")}
    built = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    site = tmp_path / "site"
    spec_page = (site / "reference" / "spec" / "index.html").read_text()
    assert "n_trials" in spec_page and "Optuna trials per candidate." in spec_page  # from the field description
    cli_page = (site / "reference" / "cli" / "index.html").read_text()
    for command in ("retrainer run", "retrainer init", "retrainer doctor", "retrainer explain-spec"):
        assert command in cli_page
    trouble = (site / "troubleshooting" / "index.html").read_text()
    assert "DataValidationError" in trouble and "generated:" not in trouble  # the marker was replaced
    assert "Run the pipeline for" in (site / "reference" / "api" / "index.html").read_text()  # mkdocstrings
    assert "Run one test" in (site / "contributing" / "index.html").read_text()  # CONTRIBUTING.md, included
