"""`retrainer doctor`: check what a pipeline needs before it runs, one line per need, each with its fix.

Checks are cheap and bounded (a few seconds at most each): nothing is trained, nothing is written
except a probe file in the run store's folder, removed at once. Each check returns a `Check`;
"missing" means the pipeline cannot run as specified, "warn" that something optional is absent.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from retrainer.urls import is_postgres, safe_url

if TYPE_CHECKING:
    from retrainer.spec import Spec

Status = Literal["ok", "missing", "warn"]

TIMEOUT_SECONDS = 3
MIN_FREE_BYTES = 1 << 30  # a run store holds data copies, models and the MLflow DB: 1 GiB is a floor
# what every run imports; the extras (airflow, dvc, serving, explain) are checked where a spec needs them
CORE_PACKAGES = ("pydantic", "pandas", "scikit-learn", "optuna", "mlflow", "lightgbm", "xgboost", "sqlalchemy")
_URL = re.compile(r"\b(?:postgres(?:ql)?(?:\+\w+)?|rediss?)://[^\s'\"]+")


@dataclass(frozen=True)
class Check:
    """One need: what was checked, whether it holds, and how to fix it when it does not."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "missing"


def diagnose(spec: Spec | None, *, airflow: bool = False) -> list[Check]:
    """Every check that applies: the environment always; the source, stores and services when a spec is given."""
    checks = [check_python(), check_packages()]
    if spec is not None:
        checks.append(check_source(spec))
        checks.append(check_tracking(spec))
        checks.append(check_disk(spec.store))
        checks += [check_postgres(url) for url in service_urls(spec, "postgres") if url != spec.source.url]
        checks += [check_redis(url) for url in service_urls(spec, "redis")]
    checks.append(check_airflow(needed=airflow))
    return checks


def as_dicts(checks: list[Check]) -> list[dict[str, Any]]:
    return [asdict(check) | {"failed": check.failed} for check in checks]


# --------------------------------------------------------------------------------- environment


def check_python() -> Check:
    # older Pythons cannot import retrainer at all (pip refuses them too): reaching here means 3.11+
    version = ".".join(map(str, sys.version_info[:3]))
    return Check("python", "ok", f"Python {version} ({sys.executable})")


def check_packages() -> Check:
    found, absent = [], []
    for name in CORE_PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            absent.append(name)
    if absent:
        return Check(
            "packages",
            "missing",
            f"not installed: {', '.join(absent)}",
            "pip install -c requirements/constraints.txt -e . (or `make setup`)",
        )
    return Check("packages", "ok", ", ".join(found))


def check_airflow(*, needed: bool) -> Check:
    # find_spec only: importing Airflow takes seconds and configures logging
    if importlib.util.find_spec("airflow") is not None:
        return Check("airflow", "ok", f"apache-airflow {_version('apache-airflow')} (for `retrainer airflow export`)")
    return Check(
        "airflow",
        "missing" if needed else "warn",
        "apache-airflow is not installed" + ("" if needed else " (only `retrainer airflow export` needs it)"),
        "pip install 'retrainer[airflow]' -c requirements/constraints.txt",
    )


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


# ------------------------------------------------------------------------------------ the spec


def check_source(spec: Spec) -> Check:
    """The source answers: a file exists and is readable; a database connects and the query counts rows."""
    from retrainer.errors import RetrainerError
    from retrainer.sources import for_spec

    quick = spec.source.model_copy(update={"connect_timeout": min(spec.source.connect_timeout, TIMEOUT_SECONDS)})
    try:
        return Check("source", "ok", for_spec(quick).check())
    except RetrainerError as error:
        return Check("source", "missing", error.message, error.hint or "check source.url and the query")


def check_tracking(spec: Spec) -> Check:
    """The MLflow store can be written: a local SQLite file's folder, or a tracking server that answers."""
    uri = spec.tracking.uri or f"sqlite:///{Path(spec.store).resolve() / 'mlflow.db'}"
    if uri.startswith(("http://", "https://")):
        return _http_health(uri)
    if uri.startswith("sqlite:///"):
        from retrainer.integrations.sqlite_health import sqlite_damage, sqlite_fix
        from retrainer.urls import sqlite_file

        path = sqlite_file(uri)
        problem = sqlite_damage(Path(path)) if path else None
        if problem:
            return Check("mlflow", "missing", f"{path} {problem}", sqlite_fix(problem))
        return _writable("mlflow", Path(uri.removeprefix("sqlite:///")).parent, uri)
    if is_postgres(uri):
        return check_postgres(uri, name="mlflow")
    if "://" not in uri:
        return _writable("mlflow", Path(uri), uri)
    return Check("mlflow", "warn", f"{uri}: not checked (scheme not known to doctor)")


def _http_health(uri: str) -> Check:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=TIMEOUT_SECONDS) as response:
            return Check("mlflow", "ok", f"{uri} answers ({response.status})")
    except (urllib.error.URLError, OSError) as error:
        return Check(
            "mlflow", "missing", f"{uri} does not answer: {error}", "start the MLflow server or fix tracking.uri"
        )


def _writable(name: str, folder: Path, shown: str) -> Check:
    existing = _nearest_existing(folder)
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".retrainer-doctor-"):
            pass
    except OSError as error:
        return Check(
            name, "missing", f"{shown}: cannot write in {existing}: {error.strerror}", f"make {existing} writable"
        )
    created = "" if existing == folder else f" ({folder} will be created)"
    return Check(name, "ok", f"{shown} is writable{created}")


def _nearest_existing(folder: Path) -> Path:
    folder = folder.resolve()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_disk(store: str) -> Check:
    if "://" in store and not store.startswith("file://"):
        return Check("disk", "ok", f"run store {store} is remote: no local disk needed")
    folder = _nearest_existing(Path(store.removeprefix("file://")))
    free = shutil.disk_usage(folder).free
    detail = f"{free / (1 << 30):.1f} GiB free for the run store at {folder}"
    if free < MIN_FREE_BYTES:
        return Check("disk", "missing", detail, "free some space, or point `store:` at a bigger disk")
    return Check("disk", "ok", detail)


def service_urls(spec: Spec, kind: Literal["postgres", "redis"]) -> list[str]:
    """Every PostgreSQL or Redis URL anywhere in the spec (source, study storage, serving...), once each."""
    found = dict.fromkeys(url for url in _URL.findall(" ".join(_strings(spec.model_dump(mode="json")))))
    return [url for url in found if url.startswith(kind)]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def check_postgres(url: str, name: str = "postgresql") -> Check:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    shown = safe_url(url)
    try:
        engine = create_engine(url, connect_args={"connect_timeout": TIMEOUT_SECONDS})
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except (SQLAlchemyError, ImportError) as error:
        first = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return Check(
            name, "missing", f"cannot reach {shown}: {first}", "start PostgreSQL, or fix the URL, user and password"
        )
    return Check(name, "ok", f"{shown} answers")


def check_redis(url: str) -> Check:
    shown = safe_url(url)
    if importlib.util.find_spec("redis") is None:
        return Check("redis", "missing", "the redis package is not installed", "pip install 'retrainer[serving]'")
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS)
    try:
        client.ping()
    except (OSError, redis.RedisError) as error:
        return Check(
            "redis",
            "missing",
            f"cannot reach {shown}: {error}",
            "start Redis (e.g. `redis-server --daemonize yes` or `systemctl start redis`), or fix the URL in the spec",
        )
    finally:
        client.close()
    return Check("redis", "ok", f"{shown} answers PING")
