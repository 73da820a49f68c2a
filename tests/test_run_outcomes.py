"""What a re-run decides on unchanged data, on the real MLflow store (issue 25: `--force` on unchanged
data registered a twin v2 with a gain CI of [+0.0000, +0.0000]).

A twin arises whenever the training cache key changes but the model does not: the stage cache was
wiped (a fresh CI store beside a lasting registry), or tuning ran again and its trials took other
seconds. The data digest and the predictions tell, not the key."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retrainer.cli import app

pytestmark = pytest.mark.slow


def test_force_on_unchanged_data_registers_no_twin_of_the_champion(
    telco_db: Callable[..., str], write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    runner = CliRunner()
    telco_db()
    # one deterministic candidate: tuned again from scratch, it is the same model under another key
    spec = str(write_spec(models={"candidates": ["logistic_regression"], "n_trials": 2, "cv_folds": 2}))
    first = runner.invoke(app, ["run", spec])
    assert first.exit_code == 0 and "promoted v1" in first.output, first.output
    for scratch in ("cache", "work", "decisions"):  # the stage cache is gone; the registry stays
        shutil.rmtree(tmp_path / "store" / scratch)
    forced = runner.invoke(app, ["run", "--force", "--json", spec])
    assert forced.exit_code == 0, forced.output
    result = json.loads(forced.stdout)
    assert (result["outcome"], result["model_version"], result["champion_version"]) == ("unchanged", 1, 1)
    assert "model identical to v1 (same data" in result["reason"] and "the same predictions on all" in result["reason"]
    versions = runner.invoke(app, ["models", "telco-test", "--store", str(tmp_path / "store"), "--json"])
    assert [v["version"] for v in json.loads(versions.stdout)] == [1]


def test_the_cached_drift_line_follows_the_champion(
    telco_db: Callable[..., str], write_spec: Callable[..., Path]
) -> None:
    """The drift stage's cache once kept "no reference (no champion yet)" after v1 became champion."""
    runner = CliRunner()
    telco_db()
    spec = str(write_spec())

    def drift_stage() -> dict[str, object]:
        done = runner.invoke(app, ["run", "--json", spec])
        assert done.exit_code == 0, done.output
        return next(stage for stage in json.loads(done.stdout)["stages"] if stage["name"] == "drift")

    assert drift_stage()["summary"] == "no reference (no champion yet)"
    second = drift_stage()
    assert second["status"] == "ran" and "features drifted vs champion v1" in str(second["summary"])
    third = drift_stage()
    assert third["status"] == "cached" and third["summary"] == second["summary"]
