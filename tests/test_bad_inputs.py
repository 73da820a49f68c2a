"""The bad-input corpus: every case in tests/bad_inputs/ must end in one clear line and its own exit code.

A case file says what goes wrong (spec keys over the base Telco spec, edits to the real Telco rows,
extra files, environment variables, command-line arguments) and what the user must see (error class,
message fragment, exit code). A spec may also be given as raw text (`spec_text`, in `spec_encoding`) or
be a folder (`spec_is_directory`); `damaged_parquet` writes the rows as Parquet with damaged pages, and
`{champion_db}` in a spec value is the champion registry's SQLite file. Every case runs against one
registry that already has a champion, and afterwards that registry must be exactly as it was: nothing
registered, the champion unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from retrainer.cli import app
from retrainer.spec import deep_merge

CASES = sorted((Path(__file__).parent / "bad_inputs").glob("*.yaml"))
runner = CliRunner()


def base_spec(case_dir: Path, tracking_uri: str) -> dict[str, Any]:
    return {
        "name": "bad-input",
        "source": {"url": f"sqlite:///{case_dir / 'telco.db'}", "query": "SELECT * FROM customers"},
        "target": {"column": "churn", "positive": "Yes"},
        "id_column": "customer_id",
        "store": str(case_dir / "store"),
        "validation": {"min_rows": 1000},
        "models": {"candidates": ["logistic_regression"], "n_trials": 1, "cv_folds": 2},
        "tracking": {"uri": tracking_uri},
    }


# ------------------------------------------------------------------------------ edits to the rows
def _head(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    return frame.head(rows)


def _drop_columns(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame.drop(columns=columns)


def _set(frame: pd.DataFrame, column: str, value: Any) -> pd.DataFrame:
    return frame.assign(**{column: value})


def _set_rows(frame: pd.DataFrame, column: str, value: Any, rows: int) -> pd.DataFrame:
    edited = frame.copy()
    if value is None:
        edited[column] = edited[column].astype(object)
    edited.loc[edited.sample(rows, random_state=0).index, column] = value
    return edited


def _unique_text(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    return frame.assign(**{column: [f"code-{i:06d}" for i in range(len(frame))]})


def _duplicate_ids(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    edited = frame.copy()
    edited.loc[edited.index[:rows], "customer_id"] = edited["customer_id"].iloc[0]
    return edited


def _timestamps(frame: pd.DataFrame, column: str, future_rows: int) -> pd.DataFrame:
    stamps = pd.date_range("2025-01-01", "2026-05-01", periods=len(frame)).to_numpy().copy()
    stamps[:future_rows] = np.datetime64("2099-01-01")
    return frame.assign(**{column: stamps})


def _rare_positives(frame: pd.DataFrame, rows: int, positives: int) -> pd.DataFrame:
    churned = frame[frame["churn"] == "Yes"].head(positives)
    stayed = frame[frame["churn"] == "No"].head(rows - positives)
    return pd.concat([churned, stayed], ignore_index=True)


def _leak(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The target copied into a feature with a little noise, as a column filled in after the outcome would be."""
    churned = (frame["churn"] == "Yes").to_numpy()
    flipped = np.random.default_rng(0).random(len(frame)) < 0.01
    return frame.assign(**{column: np.where(churned ^ flipped, "offered", "none")})


EDITS: dict[str, Callable[..., pd.DataFrame]] = {
    "leak": _leak,
    "head": _head,
    "drop_columns": _drop_columns,
    "set": _set,
    "set_rows": _set_rows,
    "unique_text": _unique_text,
    "duplicate_ids": _duplicate_ids,
    "timestamps": _timestamps,
    "rare_positives": _rare_positives,
}


def _damaged_parquet(frame: pd.DataFrame, path: Path) -> None:
    """The rows as Parquet whose footer is intact but whose data pages are not (bytes flipped in the first half)."""
    frame.to_parquet(path, compression="snappy")
    damaged = bytearray(path.read_bytes())
    for offset in range(200, len(damaged) // 2, 97):
        damaged[offset] ^= 0x5A
    path.write_bytes(bytes(damaged))


def _fill_dir(value: Any, case_dir: Path, champion_db: str = "") -> Any:
    """`{dir}` is the case's folder, `{champion_db}` the champion registry's SQLite file."""
    if isinstance(value, dict):
        return {k: _fill_dir(v, case_dir, champion_db) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_dir(v, case_dir, champion_db) for v in value]
    if isinstance(value, str):
        return value.replace("{dir}", str(case_dir)).replace("{champion_db}", champion_db)
    return value


# ------------------------------------------------------------------------------------ the registry
@pytest.fixture(scope="module")
def champion_registry(tmp_path_factory: pytest.TempPathFactory, telco: pd.DataFrame) -> Iterator[str]:
    """A registry whose champion was trained on the real Telco rows: the state every case must leave alone."""
    from sqlalchemy import create_engine

    home = tmp_path_factory.mktemp("champion")
    tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
    engine = create_engine(f"sqlite:///{home / 'telco.db'}")
    telco.to_sql("customers", engine, index=False)
    engine.dispose()
    spec = home / "pipeline.yaml"
    spec.write_text(yaml.safe_dump(base_spec(home, tracking_uri)))
    result = runner.invoke(app, ["-q", "run", str(spec)])
    assert result.exit_code == 0, result.output
    yield tracking_uri


def registry_state(tracking_uri: str) -> tuple[list[str], str | None]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    versions = sorted(v.version for v in client.search_model_versions("name='bad-input'"))
    champion = client.get_registered_model("bad-input").aliases.get("champion")
    return versions, champion


# ------------------------------------------------------------------------------------- the cases
def test_the_corpus_covers_at_least_thirty_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize(
    "case_file",
    [  # a case that `needs: postgres` gets its fixture at run time, so the mark is given here
        pytest.param(c, marks=[pytest.mark.postgres] if "needs: postgres" in c.read_text() else [], id=c.stem)
        for c in CASES
    ],
)
def test_bad_input_is_one_clear_line_and_leaves_the_champion(
    case_file: Path,
    tmp_path: Path,
    telco: pd.DataFrame,
    champion_registry: str,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    case = yaml.safe_load(case_file.read_text())
    if case.get("needs") == "postgres":
        request.getfixturevalue("postgres_engine")
    expect = case["expect"]
    before = registry_state(champion_registry)

    frame = telco
    for edit in case.get("data", []):
        edit = dict(edit)
        frame = EDITS[edit.pop("op")](frame, **edit)
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'telco.db'}")
    frame.to_sql("customers", engine, index=False)
    engine.dispose()
    for name, content in case.get("files", {}).items():
        (tmp_path / name).write_text(content)
    for name in case.get("damaged_parquet", []):
        _damaged_parquet(frame, tmp_path / name)
    for name, value in case.get("env", {}).items():
        monkeypatch.setenv(name, value)

    spec_file = tmp_path / "pipeline.yaml"
    if case.get("spec_is_directory"):  # the path given to `run` is a folder
        spec_file.mkdir()
    elif "spec_text" in case:
        spec_file.write_bytes(case["spec_text"].encode(case.get("spec_encoding", "utf-8")))
    else:
        spec = deep_merge(
            base_spec(tmp_path, champion_registry),
            _fill_dir(case.get("spec", {}), tmp_path, champion_registry.removeprefix("sqlite:///")),
        )
        spec_file.write_text(yaml.safe_dump(spec))

    result = runner.invoke(app, ["-q", "run", str(spec_file), *case.get("args", [])])
    output = result.output

    assert result.exit_code == expect["exit_code"], output
    assert "Traceback" not in output
    assert _fill_dir(expect["message"], tmp_path) in output, output
    if expect["exit_code"] in (5, 6):  # a rejection: the outcome line says why
        assert output.startswith("rejected: "), output
    else:
        assert output.startswith(f"error ({expect['error']}): "), output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) <= 2, f"more than the error and its hint:\n{output}"  # one clear line, one hint
    for secret in expect.get("absent", []):
        assert secret not in output
    assert registry_state(champion_registry) == before, "the registry changed after a bad input"
