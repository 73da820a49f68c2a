"""Developer experience: `init` → `run` with no edits, `doctor`, `explain-spec`, NO_COLOR, completion."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from retrainer.cli import app
from retrainer.spec import Spec, load_spec
from retrainer.spec_reference import reference_markdown, undocumented_fields

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout if "--json" in args else result.output


def closed_port() -> int:
    """A port nothing listens on: bound once by us, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ------------------------------------------------------------------------------------------ init
@pytest.mark.slow
def test_init_on_the_telco_sqlite_file_then_run_promotes_with_no_edits(
    telco_db: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = telco_db()
    monkeypatch.chdir(tmp_path)  # the default run store, .retrainer, lands here
    code, output = invoke("init", "churn", "--source", url, "--target", "churn")
    assert code == 0, output
    assert sorted(p.name for p in (tmp_path / "churn").iterdir()) == ["README.md", "pipeline.yaml"]
    text = (tmp_path / "churn" / "pipeline.yaml").read_text()
    assert "url: sqlite:///../telco.db" in text  # relative to the spec, so it runs from anywhere
    assert "#   tenure: int, 0% null" in text and "<- id" in text
    spec = load_spec(tmp_path / "churn" / "pipeline.yaml")
    assert (spec.target.column, spec.target.positive, spec.id_column) == ("churn", "Yes", "customer_id")

    code, output = invoke("run", "churn/pipeline.yaml")
    assert code == 0, output
    assert "promoted v1" in output
    code, output = invoke("models", "churn", "--json")
    assert json.loads(output)[0]["aliases"] == ["champion"]


def test_init_on_a_csv_guesses_target_and_id_and_writes_a_valid_spec(telco: pd.DataFrame, tmp_path: Path) -> None:
    telco.head(400).to_csv(tmp_path / "customers.csv", index=False)
    code, output = invoke("init", "mine", "--source", str(tmp_path / "customers.csv"), "--dir", str(tmp_path / "p"))
    assert code == 0, output
    spec = load_spec(tmp_path / "p" / "pipeline.yaml")
    assert spec.source.path == str((tmp_path / "customers.csv").resolve())
    assert spec.target.column == "churn" and spec.id_column == "customer_id"
    assert "retrainer run" in (tmp_path / "p" / "README.md").read_text()

    code, output = invoke("init", "mine", "--source", str(tmp_path / "customers.csv"), "--dir", str(tmp_path / "p"))
    assert code == 3 and "already exists" in output  # never overwrites without --force


def test_init_explains_a_wrong_target_and_a_non_binary_one(telco: pd.DataFrame, tmp_path: Path) -> None:
    telco.head(200).to_csv(tmp_path / "c.csv", index=False)
    code, output = invoke("init", "x", "--source", str(tmp_path / "c.csv"), "--target", "chrun", "--dir", str(tmp_path))
    assert code == 3 and "did you mean 'churn'" in output
    code, output = invoke(
        "init",
        "x",
        "--source",
        str(tmp_path / "c.csv"),
        "--target",
        "contract",
        "--task",
        "binary",
        "--dir",
        str(tmp_path),
    )
    assert code == 3 and "3 distinct values" in output and "--task multiclass" in output
    code, output = invoke("init", "x", "--source", str(tmp_path / "c.csv"), "--task", "ranking", "--dir", str(tmp_path))
    assert code == 3 and "choose from binary, multiclass, regression" in output
    assert not (tmp_path / "pipeline.yaml").exists()  # nothing written on error


def test_init_writes_the_task_a_multiclass_or_numeric_target_implies(telco: pd.DataFrame, tmp_path: Path) -> None:
    telco.head(300).to_csv(tmp_path / "c.csv", index=False)

    code, output = invoke(
        "init", "c", "--source", str(tmp_path / "c.csv"), "--target", "contract", "--dir", str(tmp_path / "m")
    )
    assert code == 0, output
    spec = load_spec(tmp_path / "m" / "pipeline.yaml")
    assert spec.task == "multiclass" and spec.evaluation.metric == "log_loss"
    assert "3 classes: Month-to-month, One year, Two year" in (tmp_path / "m" / "pipeline.yaml").read_text()

    code, output = invoke(
        "init", "c", "--source", str(tmp_path / "c.csv"), "--target", "monthly_charges", "--dir", str(tmp_path / "r")
    )
    assert code == 0, output
    spec = load_spec(tmp_path / "r" / "pipeline.yaml")
    assert spec.task == "regression" and spec.evaluation.metric == "rmse"
    assert spec.models.candidates == ["ridge", "lightgbm"]

    code, output = invoke(
        "init", "c", "--source", str(tmp_path / "c.csv"), "--target", "senior_citizen", "--dir", str(tmp_path / "b")
    )
    assert code == 0 and load_spec(tmp_path / "b" / "pipeline.yaml").task is None  # binary, as before


def test_init_without_a_source_writes_a_template_to_edit(tmp_path: Path) -> None:
    code, output = invoke("init", "blank", "--dir", str(tmp_path / "b"))
    assert code == 0, output
    raw = yaml.safe_load((tmp_path / "b" / "pipeline.yaml").read_text())
    assert raw["source"] == {"path": "data.csv"} and raw["target"] == "label"


# ---------------------------------------------------------------------------------------- doctor
def test_doctor_says_redis_and_postgres_are_down_with_the_fix(
    write_spec: Callable[..., Path], telco_db: Callable[..., str]
) -> None:
    telco_db()
    redis_port, pg_port = closed_port(), closed_port()
    # until the serving section lands, a bind parameter carries the Redis URL: doctor reads any URL in the spec
    spec = write_spec(
        source={
            "url": f"sqlite:///{write_spec().parent / 'telco.db'}",
            "table": "customers",
            "params": {"features": f"redis://127.0.0.1:{redis_port}/0"},
        },
        models={"candidates": ["lightgbm"], "study_storage": f"postgresql+psycopg://u:pw@127.0.0.1:{pg_port}/x"},
    )
    code, output = invoke("doctor", str(spec))
    assert code == 1
    lines = {line.split()[1]: line for line in output.splitlines() if len(line.split()) > 1}
    assert lines["source"].split()[0] == "ok" and "7,043 rows" in lines["source"]
    assert lines["redis"].split()[0] == "missing"
    assert f"cannot reach redis://127.0.0.1:{redis_port}/0" in lines["redis"] and "fix: start Redis" in lines["redis"]
    assert lines["postgresql"].split()[0] == "missing" and "pw" not in lines["postgresql"]
    assert lines["mlflow"].split()[0] == "ok" and lines["disk"].split()[0] == "ok"
    assert "something needed is missing" in output

    code, output = invoke("doctor", str(spec), "--json")
    report = json.loads(output)
    assert report["ok"] is False
    assert {c["name"] for c in report["checks"] if c["failed"]} == {"redis", "postgresql"}


def test_doctor_passes_against_the_real_redis_and_a_present_source(
    write_spec: Callable[..., Path], telco_db: Callable[..., str], redis_url: str
) -> None:
    telco_db()
    spec = write_spec()
    raw = yaml.safe_load(spec.read_text())
    raw["source"]["params"] = {"features": redis_url}
    spec.write_text(yaml.safe_dump(raw))
    code, output = invoke("--quiet", "doctor", str(spec))
    assert code == 0, output
    assert output.strip() == ""  # quiet: only problems are printed, and there are none


def test_doctor_reports_a_missing_source_file_and_a_bad_spec(tmp_path: Path) -> None:
    spec = tmp_path / "p.yaml"
    spec.write_text("name: p\nsource: {path: nowhere.csv}\ntarget: y\n")
    code, output = invoke("doctor", str(spec))
    assert code == 1 and "nowhere.csv does not exist" in output
    spec.write_text("name: p\nsource: {path: nowhere.csv}\ntarget: y\nmodels: {n_trails: 3}\n")
    code, output = invoke("doctor", str(spec))
    assert code == 1 and "did you mean 'n_trials'" in output


# ---------------------------------------------------------------------------------- explain-spec
def test_explain_spec_fills_every_default_and_says_what_each_key_means(write_spec: Callable[..., Path]) -> None:
    code, output = invoke("explain-spec", str(write_spec()))
    assert code == 0, output
    explained = yaml.safe_load(output)  # still valid YAML: the comments are comments
    assert explained["split"]["method"] == "stratified" and explained["split"]["test_size"] == 0.2
    assert explained["models"]["n_trials"] == 2  # the spec's own value, not the default
    assert "  # Optuna trials per candidate. 10 when" in output and "caps each candidate.\n  n_trials: 2\n" in output
    assert "  cv_folds: 3\n" in output and "test_size: 0.2  # default" in output
    assert "task: null  # default: binary, as target.positive names a positive label" in output


def test_every_spec_key_has_a_meaning_for_explain_spec_and_the_docs() -> None:
    assert undocumented_fields(Spec) == [], "add description=... to these fields in retrainer/spec/"
    markdown = reference_markdown(Spec)
    for section in ("source", "validation.columns", "features.derived", "promotion.min_improvement"):
        assert f"## `{section}`" in markdown


# ------------------------------------------------------------------------- colour and completion
def test_no_color_is_respected_and_completion_scripts_are_offered() -> None:
    def doctor_output(**env: str) -> str:
        environment = {**os.environ, "FORCE_COLOR": "1", **env}
        environment.pop("NO_COLOR", None) if "NO_COLOR" not in env else None
        command = [sys.executable, "-m", "retrainer.cli", "doctor"]  # also checks `-m` sees the new commands
        return subprocess.run(command, capture_output=True, text=True, env=environment, check=False).stdout

    assert "\x1b[32m" in doctor_output()  # green "ok" on a colour terminal...
    assert "\x1b[" not in doctor_output(NO_COLOR="1")  # ...and none at all with NO_COLOR

    # what the installed completion script asks (`--install-completion` detects the user's shell, so the
    # protocol is driven directly): the words typed so far -> the candidates
    def complete(words: str) -> list[str]:
        environment = {**os.environ, "_RETRAINER_COMPLETE": "complete_bash", "COMP_WORDS": words}
        environment["COMP_CWORD"] = str(len(words.split()) - 1)
        command = [sys.executable, "-m", "retrainer.cli"]
        return subprocess.run(command, capture_output=True, text=True, env=environment, check=True).stdout.split()

    assert complete("retrainer expl") == ["explain-spec"]
    assert complete("retrainer doctor --ai") == ["--airflow"]


def test_explain_spec_masks_passwords_that_the_environment_put_into_urls(
    write_spec: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAINER_EXPLAIN_PG", "postgresql+psycopg://etl:s3cret@db.example.com:5432/crm")
    monkeypatch.setenv("RETRAINER_EXPLAIN_PASS", "hunter2")
    monkeypatch.setenv("RETRAINER_EXPLAIN_HOOK", "https://hooks.example.com/T000/s3cret-hook")
    spec = write_spec(
        source={"url": "${RETRAINER_EXPLAIN_PG}", "query": "SELECT * FROM customers"},
        models={"study_storage": "postgresql://optuna:${RETRAINER_EXPLAIN_PASS}@db/optuna", "n_trials": 1},
        notify={"slack": {"webhook_url": "${RETRAINER_EXPLAIN_HOOK}"}},
    )

    code, output = invoke("explain-spec", str(spec))

    assert code == 0, output
    for secret in ("s3cret", "hunter2", "s3cret-hook"):
        assert secret not in output
    explained = yaml.safe_load(output)
    assert explained["source"]["url"] == "postgresql+psycopg://etl:***@db.example.com:5432/crm"
    assert explained["models"]["study_storage"] == "postgresql://optuna:***@db/optuna"


def test_dvc_export_writes_the_env_reference_not_the_password(
    write_spec: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression for issue 25: params.yaml goes into git, so a password from the environment must not."""
    monkeypatch.setenv("RETRAINER_DVC_PG", "postgresql+psycopg://etl:s3cret@db.example.com:5432/crm")
    monkeypatch.setenv("RETRAINER_DVC_PASS", "hunter2")
    spec = write_spec(
        source={"url": "${RETRAINER_DVC_PG}", "query": "SELECT * FROM customers"},
        tracking={"uri": "postgresql://mlflow:${RETRAINER_DVC_PASS}@db/mlflow"},
        models={"study_storage": "postgresql://optuna:${RETRAINER_DVC_PASS:-x}@db/optuna", "n_trials": 1},
    )
    spec.with_name("pipeline.prod.yaml").write_text("source: {url: '${RETRAINER_DVC_PG}?sslmode=require'}\n")

    code, output = invoke("dvc", "export", str(spec), "--env", "prod", "--out", str(tmp_path / "dvc"))

    assert code == 0, output
    written = "".join(p.read_text() for p in (tmp_path / "dvc").iterdir() if p.is_file()) + output
    assert "s3cret" not in written and "hunter2" not in written
    params = yaml.safe_load((tmp_path / "dvc" / "params.yaml").read_text())
    assert params["source"]["url"] == "${RETRAINER_DVC_PG}?sslmode=require"
    assert params["tracking"]["uri"] == "postgresql://mlflow:${RETRAINER_DVC_PASS}@db/mlflow"


# ------------------------------------------------------------------------- a damaged MLflow store
def _damaged_copy(tmp_path: Path) -> Path:
    """A real SQLite file (the MLflow schema's shape: several tables) with its pages after the first overwritten."""
    import sqlite3

    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as connection:
        for table in range(20):
            connection.execute(f"CREATE TABLE t{table} (id INTEGER PRIMARY KEY, name TEXT)")
            connection.executemany(f"INSERT INTO t{table} (name) VALUES (?)", [(f"row {i}" * 5,) for i in range(200)])
    connection.close()
    damaged = bytearray(path.read_bytes())
    for offset in range(100, len(damaged), 53):  # the header's first 100 bytes stay: it still opens
        damaged[offset] ^= 0xFF
    path.write_bytes(bytes(damaged))
    return path


def test_a_damaged_or_unwritable_sqlite_store_is_named_and_a_healthy_one_passes(tmp_path: Path) -> None:
    import shutil
    import sqlite3

    from retrainer.integrations.sqlite_health import sqlite_damage

    assert sqlite_damage(tmp_path / "absent.db") is None  # MLflow creates it
    healthy = tmp_path / "ok.db"
    sqlite3.connect(healthy).execute("CREATE TABLE t (x)").connection.close()
    assert sqlite_damage(healthy) is None
    assert sqlite3.connect(healthy).execute("SELECT name FROM sqlite_master").fetchall() == [("t",)]  # probe gone
    assert (sqlite_damage(_damaged_copy(tmp_path)) or "").startswith("is damaged: ")
    assert sqlite_damage(tmp_path) == "is a directory, not a SQLite file"
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(healthy)], check=False).returncode == 0:
        try:  # an immutable file: what an unwritable one is to root, who ignores permissions
            assert sqlite_damage(healthy) == "is not writable (attempt to write a readonly database)"
        finally:
            subprocess.run(["chattr", "-i", str(healthy)], check=True)


def test_doctor_and_run_name_a_damaged_mlflow_store_before_any_training(
    write_spec: Callable[..., Path], telco_db: Callable[..., str], tmp_path: Path
) -> None:
    telco_db()
    damaged = _damaged_copy(tmp_path)
    spec = write_spec(tracking={"uri": f"sqlite:///{damaged}"})

    code, output = invoke("doctor", str(spec))
    assert code == 1 and f"{damaged} is damaged: " in output, output

    code, output = invoke("-q", "run", str(spec))
    assert code == 7 and output.startswith(f"error (RegistryError): the MLflow store {damaged} is damaged"), output
    assert not (tmp_path / "store" / "cache" / "extract").exists(), "worked before checking the registry"
