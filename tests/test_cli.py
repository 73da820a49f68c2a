"""The command line: one clear line per error, a distinct exit code per kind, and the registry commands."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import joblib
import pytest
from setup_data import telco_frame
from typer.testing import CliRunner

from retrainer.cli import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    """Exit code and what a user sees; with --json, only stdout (what a script would parse)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout if "--json" in args else result.output


def test_help_lists_every_command_without_importing_heavy_libraries() -> None:
    code = (
        "import sys, retrainer.cli; print([m for m in ('mlflow', 'sklearn', 'pandas', 'optuna') if m in sys.modules])"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert imported == "[]"
    exit_code, output = invoke("--help")
    assert exit_code == 0
    for command in ("run", "validate", "runs", "models", "promote", "rollback", "audit", "export-model"):
        assert command in output


def test_invalid_spec_is_one_line_with_the_key_path_and_exit_code_3(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\nsource: {path: data.csv}\ntarget: y\nmodels: {n_trials: many, candidtes: [xgboost]}\n")
    exit_code, output = invoke("validate", str(spec))
    assert exit_code == 3
    assert "models.n_trials" in output and "did you mean 'candidates'" in output
    assert "Traceback" not in output


def test_unreachable_database_is_a_source_error_with_exit_code_4_and_no_password(
    write_spec: Callable[..., Path],
) -> None:
    spec = write_spec(
        source={
            "url": "postgresql+psycopg://postgres:s3cret-pw@127.0.0.1:1/test",
            "table": "customers",
            "connect_timeout": 2,
        }
    )
    exit_code, output = invoke("run", str(spec))
    assert exit_code == 4
    assert "cannot read from postgresql+psycopg://postgres:***@127.0.0.1:1/test" in output
    assert "s3cret-pw" not in output


@pytest.mark.slow
def test_run_models_promote_and_rollback_from_the_command_line(
    telco_db: Callable[..., str], write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    telco_db()
    store = str(tmp_path / "store")
    exit_code, output = invoke("run", str(write_spec()))
    assert exit_code == 0, output
    assert "promoted v1" in output

    exit_code, output = invoke("run", str(write_spec()))
    assert exit_code == 0 and "unchanged v1" in output

    weak = {
        "candidates": ["logistic_regression"],
        "n_trials": 1,
        "cv_folds": 2,
        "params": {"logistic_regression": {"C": 0.0001}},
    }
    exit_code, output = invoke("run", "--json", str(write_spec("weak.yaml", models=weak)))
    assert exit_code == 0
    weak_result = json.loads(output)
    assert weak_result["outcome"] == "kept_champion" and weak_result["model_version"] == 2

    exit_code, output = invoke("models", "telco-test", "--store", store, "--json")
    versions = {v["version"]: v for v in json.loads(output)}
    assert versions[1]["aliases"] == ["champion"] and versions[2]["aliases"] == ["challenger"]  # lost, kept

    exit_code, output = invoke("promote", "telco-test", "2", "--store", store)
    assert exit_code == 0 and "now v2 (previous: v1)" in output
    exit_code, output = invoke("rollback", "telco-test", "--store", store)
    assert exit_code == 0 and "rolled back to v1 (was v2)" in output
    exit_code, output = invoke("models", "telco-test", "--store", store, "--json")
    versions = {v["version"]: v for v in json.loads(output)}
    assert versions[1]["aliases"] == ["champion"] and versions[2]["aliases"] == ["previous"]

    exit_code, output = invoke("runs", "--store", store, "--json")
    assert [r["status"] for r in json.loads(output)] == ["kept_champion", "unchanged", "promoted"]

    exit_code, output = invoke("audit", "telco-test", "--store", store, "--json")
    audit = json.loads(output)
    assert [(e["action"], e["version"], e["champion_before"], e["champion_after"]) for e in audit] == [
        ("promoted", 1, None, 1),
        ("kept_champion", 2, 1, 1),
        ("promoted_by_hand", 2, 1, 2),
        ("rolled_back", 1, 2, 1),
    ]
    assert audit[0]["actor"].startswith("retrainer run ") and audit[0]["lock"] == "file lock"
    assert all(e["at"] and e["reason"] for e in audit)

    exit_code, output = invoke("export-model", "telco-test", "--to", str(tmp_path / "models"), "--store", store)
    assert exit_code == 0, output
    exported = tmp_path / "models" / "telco-test"
    assert (exported / "latest").read_text().strip() == "v1"
    metadata = json.loads((exported / "v1" / "metadata.json").read_text())
    assert metadata["version"] == 1 and "champion" in metadata["aliases"] and metadata["metrics"]["roc_auc"] > 0.7
    model = joblib.load(exported / "v1" / "model.pkl")
    frame = telco_frame().head(20)
    assert model.predict_proba(frame[metadata["input_columns"]]).shape == (20, 2)


@pytest.mark.slow
def test_rejected_batch_exits_5_and_lists_every_failure(
    telco_db: Callable[..., str], write_spec: Callable[..., Path], telco: object
) -> None:
    import pandas as pd

    frame = pd.concat([telco, telco.head(500)], ignore_index=True)  # type: ignore[attr-defined]
    frame.loc[:1000, "tenure"] = -5
    telco_db(frame)
    spec = write_spec(
        validation={"min_rows": 100, "max_duplicate_fraction": 0.01, "columns": {"tenure": {"min": 0, "max": 120}}}
    )
    exit_code, output = invoke("run", str(spec))
    assert exit_code == 5
    assert "rejected" in output
    assert "1,001 values outside [0.0, 120.0]" in output
    assert "duplicated ids" in output


def test_user_values_that_look_like_rich_markup_print_as_text(tmp_path: Path) -> None:
    """Brackets in a column name, a path or a message are data: Rich must neither swallow nor choke on them."""
    folder = tmp_path / "[bold]specs"
    folder.mkdir()
    spec = folder / "p.yaml"
    spec.write_text("name: p\nsource: {path: '[red]data.csv'}\ntarget: '[/]churn[b]'\n")
    code, output = invoke("validate", str(spec))
    assert code == 0, output
    assert "target [/]churn[b]" in output and "[red]data.csv" in output

    spec.write_text("name: p\nsource: {path: data.csv}\ntarget: churn\nmodels: {candidates: ['[/]']}\n")
    code, output = invoke("validate", str(spec))
    assert code == 3 and "unknown candidate '[/]'" in output and "[bold]specs" in output, output


def test_kept_champion_names_the_champion_kept_and_the_challenger_that_lost(capsys: pytest.CaptureFixture[str]) -> None:
    from retrainer.cli.run import _print_outcome
    from retrainer.executor import RunResult

    result = RunResult(
        run_id="r", pipeline="p", outcome="kept_champion", reason="not better", model_version=2, champion_version=1
    )
    _print_outcome(result)
    assert capsys.readouterr().out.startswith("kept champion v1 (challenger v2 registered, not promoted): not better")


def test_flags_show_no_value_placeholder_in_help() -> None:
    code, output = invoke("run", "--help")
    assert code == 0
    flag_lines = [line for line in output.splitlines() if "--force" in line or "--json" in line]
    assert flag_lines and not any("<bool>" in line for line in flag_lines), output
    assert "<str>" in output  # options that take a value still show its type


def test_a_unique_prefix_names_a_run_and_an_ambiguous_one_lists_the_matches(tmp_path: Path) -> None:
    from retrainer.errors import StoreError
    from retrainer.store import RunStore

    store = RunStore(str(tmp_path / "store"))
    for run_id in ("20261205-171607-39eaef", "20261205-180836-c14d02", "20261205-180848-d27bf8"):
        store.write_run(run_id, {"run_id": run_id, "pipeline": "p", "reason": "[red] is a label, " + "x" * 200})
    assert store.resolve_run_id("20261205-17") == "20261205-171607-39eaef"
    assert store.resolve_run_id("20261205-180836-c14d02") == "20261205-180836-c14d02"
    with pytest.raises(StoreError, match="2 runs start with it"):
        store.resolve_run_id("20261205-180")
    with pytest.raises(StoreError, match="no run 'zzz'"):
        store.resolve_run_id("zzz")

    code, output = invoke("runs", "--store", str(tmp_path / "store"))
    assert code == 0 and "20261205-180848-d27bf8" in output  # whole ids, even at 80 columns
    assert "[red]" in output and output.count("x") >= 3 * 200  # each reason whole (wrapped, not cut), as text
