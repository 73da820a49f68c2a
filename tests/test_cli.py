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
    exit_code, output = invoke("run", str(write_spec("weak.yaml", models=weak)))
    assert exit_code == 0 and "kept champion v1 (challenger v2):" in output  # not "kept champion v2"
    exit_code, output = invoke("run", "--json", str(write_spec("weak.yaml", models=weak)))
    assert exit_code == 0
    weak_result = json.loads(output)  # the champion is v1, not the identical version v2 that lost to it
    assert (weak_result["outcome"], weak_result["model_version"], weak_result["champion_version"]) == (
        "unchanged",
        2,
        1,
    )

    exit_code, output = invoke("models", "telco-test", "--store", store, "--json")
    versions = {v["version"]: v for v in json.loads(output)}
    assert versions[1]["aliases"] == ["champion"] and versions[2]["aliases"] == ["challenger"]  # lost, kept

    exit_code, output = invoke("promote", "telco-test", "5", "--store", store)
    assert exit_code == 7 and "telco-test has no version 5; it has v2 (challenger), v1 (champion)" in output
    assert "MLflow server" not in output and "reachable" not in output
    exit_code, output = invoke("promote", "telco-test", "2", "--store", store)
    assert exit_code == 0 and "now v2 (previous: v1)" in output
    exit_code, output = invoke("rollback", "telco-test", "--store", store)
    assert exit_code == 0 and "rolled back to v1 (was v2)" in output
    exit_code, output = invoke("models", "telco-test", "--store", store, "--json")
    versions = {v["version"]: v for v in json.loads(output)}
    assert versions[1]["aliases"] == ["champion"] and versions[2]["aliases"] == ["previous"]

    exit_code, output = invoke("runs", "--store", store, "--json")
    assert [r["status"] for r in json.loads(output)] == ["unchanged", "kept_champion", "unchanged", "promoted"]
    assert [r["champion_version"] for r in json.loads(output)] == [1, 1, 1, None]

    exit_code, output = invoke("audit", "telco-test", "--store", store, "--json")
    audit = json.loads(output)
    assert [(e["action"], e["version"], e["champion_before"], e["champion_after"]) for e in audit] == [
        ("promoted", 1, None, 1),
        ("kept_champion", 2, 1, 1),
        ("promoted_by_hand", 2, 1, 2),
        ("rolled_back", 1, 2, 1),
    ]
    assert audit[0]["actor"].startswith("retrainer run ") and audit[0]["lock"] == "file lock"
    kept_reason = audit[1]["reason"]
    assert len(kept_reason) > 80
    exit_code, output = invoke("audit", "telco-test", "--store", store)
    assert exit_code == 0 and kept_reason.split()[-1] in output, output  # wrapped in its column, not cut at 80
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


def _fake_run(store: Path, run_id: str, reason: str = "done") -> None:
    """A finished run's record, as the executor writes it (enough for `runs` and the id lookups)."""
    from retrainer.store import RunStore

    record = {"run_id": run_id, "pipeline": "p", "status": "promoted", "reason": reason, "started_at": run_id}
    RunStore(str(store)).write_run(run_id, record)


def test_commands_find_the_store_up_the_tree_and_never_create_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "project" / ".retrainer"
    long_reason = "kept champion v1 (challenger v2): [red] is a label; " + "the gain was inside the noise; " * 6
    _fake_run(store, "20261205-101010-abcdef", long_reason)
    (tmp_path / "project" / "sub" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "project" / "sub" / "deeper")
    code, output = invoke("runs")
    assert code == 0, output
    assert "20261205-101010-abcdef" in output  # whole, even at 80 columns
    assert output.count("noise") == 6 and "…" not in output  # the reason wraps, it is not cut
    assert "[red]" in output  # as text, not Rich markup

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for args in (("runs",), ("models", "churn"), ("audit", "churn"), ("report", "2026")):
        code, output = invoke(*args)
        assert code == 11, (args, output)
        assert f"error (StoreNotFound): no run store: no .retrainer/ in {elsewhere}" in output
    code, output = invoke("models", "churn", "--store", str(tmp_path / "typo"))
    assert code == 11 and "no run store at" in output
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "typo").exists()  # nothing created

    monkeypatch.setenv("RETRAINER_STORE", str(store))
    code, output = invoke("runs", "--json")
    assert code == 0 and [r["run_id"] for r in json.loads(output)] == ["20261205-101010-abcdef"]


def test_a_run_id_prefix_names_one_run_or_lists_the_ambiguous_ones(tmp_path: Path) -> None:
    from retrainer.errors import StoreError
    from retrainer.store import RunStore

    for run_id in ("20261205-101010-abcdef", "20261205-101010-abc999", "20261206-090000-123456"):
        _fake_run(tmp_path, run_id)
    store = RunStore(str(tmp_path))
    assert store.find_run("20261206") == "20261206-090000-123456"
    assert store.find_run("20261205-101010-abcdef") == "20261205-101010-abcdef"
    with pytest.raises(StoreError, match=r"ambiguous.*20261205-101010-abc999, 20261205-101010-abcdef"):
        store.find_run("20261205-101010-abc")
    with pytest.raises(StoreError, match="no run '2025'"):
        store.find_run("2025")


def test_from_a_misspelt_stage_suggests_the_stage_and_lists_them(write_spec: Callable[..., Path]) -> None:
    code, output = invoke("run", str(write_spec()), "--from", "tunee")
    assert code == 3
    assert "--from tunee: no such stage" in output and "did you mean tune?" in output and "extract" in output


def test_help_shows_no_type_placeholder_for_flags() -> None:
    code, output = invoke("run", "--help")
    assert code == 0 and "--force" in output and "--no-wait" in output
    assert "<bool>" not in output and "<str>" in output


def test_serve_on_a_port_in_use_is_one_line_and_says_nothing_of_serving(served_models: dict[str, object]) -> None:
    import socket

    from retrainer.spec import load_spec

    store = load_spec(served_models["spec_path"]).store  # type: ignore[arg-type]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, output = invoke("serve", str(served_models["name"]), "--store", store, "--port", str(port))
    assert code == 12
    assert f"error (PortUnavailable): cannot serve on 127.0.0.1:{port}: Address already in use" in output
    assert "serving" not in output and "Traceback" not in output


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
