"""Serving end to end: a real uvicorn server on 127.0.0.1, real MLflow models, load from a second process."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from retrainer.cli import app as cli
from retrainer.integrations.mlflow_registry import Registry
from retrainer.serving.app import ServingConfig, create_app
from retrainer.serving.router import route
from retrainer.spec import load_spec
from retrainer.store import RunStore

pytestmark = pytest.mark.slow

LOAD_REQUESTS = 2000  # the figure; most of the test's time is the model scoring them

# The second process: 4 client threads send every row once, one request per row, and write each answer.
DRIVER = """
import json, sys, threading, httpx
url, rows_file, out_file = sys.argv[1:4]
rows = json.load(open(rows_file))
answers = [None] * len(rows)
def work(start):
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(start, len(rows), 4):
            try:
                response = client.post("/predict", json=rows[i])
                answers[i] = [response.status_code, response.json()]
            except Exception as error:
                answers[i] = [0, repr(error)]
threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
json.dump(answers, open(out_file, "w"))
"""


class Server:
    """uvicorn serving `app` from a thread, on a socket bound to a free port of 127.0.0.1."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.app = app
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


@pytest.fixture
def registry(served_models: dict[str, Any]) -> Iterator[Registry]:
    """The shared registry, with aliases put back the way each test expects to find them."""
    registry = Registry(served_models["tracking_uri"])
    name = served_models["name"]
    registry.set_alias(name, "champion", 1)
    registry.set_alias(name, "challenger", 2)
    yield registry
    registry.set_alias(name, "champion", 1)
    registry.set_alias(name, "challenger", 2)


def _config(served_models: dict[str, Any], tmp_path: Path, **changes: Any) -> tuple[ServingConfig, Any]:
    spec = load_spec(served_models["spec_path"])
    config = ServingConfig.from_spec(spec, RunStore(spec.store))
    from dataclasses import replace

    from retrainer.serving.prediction_log import PredictionLog

    return replace(config, prediction_log=PredictionLog(path=str(tmp_path / "log")), **changes), spec


def _rows(served_models: dict[str, Any], count: int) -> list[dict[str, Any]]:
    frame = served_models["frame"].head(count)
    return json.loads(frame.to_json(orient="records"))


def test_split_under_load_and_an_alias_swap_drops_no_request(
    served_models: dict[str, Any], registry: Registry, tmp_path: Path
) -> None:
    name = served_models["name"]
    config, _ = _config(served_models, tmp_path)
    rows = _rows(served_models, LOAD_REQUESTS)
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    with Server(create_app(config, registry)) as server:
        driver = subprocess.Popen(
            [sys.executable, "-c", DRIVER, server.url, str(tmp_path / "rows.json"), str(tmp_path / "answers.json")]
        )
        metrics = server.app.state.metrics
        while metrics.total_requests() < LOAD_REQUESTS // 3:  # a third of the load is through: swap mid-stream
            assert driver.poll() is None, "the load finished before the swap"
            time.sleep(0.05)
        registry.set_alias(name, "champion", 2)
        registry.set_alias(name, "challenger", 1)
        assert driver.wait(timeout=300) == 0
        metadata = httpx.get(f"{server.url}/metadata").json()
        prometheus = httpx.get(f"{server.url}/metrics").text
    answers = json.loads((tmp_path / "answers.json").read_text())

    failures = [a for a in answers if a[0] != 200]
    assert failures == [], f"{len(failures)} failed requests, first: {failures[:3]}"
    bodies = [a[1] for a in answers]
    challenger_share = sum(b["alias"] == "challenger" for b in bodies) / len(bodies)
    assert abs(challenger_share - 0.1) <= 0.03, f"measured challenger share {challenger_share:.3f}"
    for row, body in zip(rows, bodies, strict=True):  # every entity went where its hash says
        assert body["entity_id"] == row["customer_id"]
        assert body["alias"] == route(row["customer_id"], 0.1, name)
    champion_versions = {b["version"] for b in bodies if b["alias"] == "champion"}
    assert champion_versions == {1, 2}, "the swap to v2 was never seen by requests"
    assert metadata["champion"]["version"] == 2 and metadata["challenger"]["version"] == 1
    assert metadata["alias_swaps"] >= 1
    assert 'retrainer_requests_total{alias="champion",version="2"}' in prometheus
    assert 'quantile="0.99"' in prometheus

    logged = config.prediction_log.read()  # type: ignore[union-attr]
    assert len(logged) == LOAD_REQUESTS  # flushed on shutdown: nothing lost
    assert set(logged["entity_id"]) == {r["customer_id"] for r in rows}
    assert set(zip(logged["alias"], logged["version"], strict=True)) == {(b["alias"], b["version"]) for b in bodies}


def test_bad_payloads_get_422_naming_the_field_and_openapi_comes_from_the_signature(
    served_models: dict[str, Any], registry: Registry, tmp_path: Path
) -> None:
    config, _ = _config(served_models, tmp_path)
    row = _rows(served_models, 1)[0]
    with Server(create_app(config, registry)) as server, httpx.Client(base_url=server.url) as client:
        missing = client.post("/predict", json={"rows": [row, {k: v for k, v in row.items() if k != "tenure"}]})
        wrong = client.post("/predict", json={**row, "monthly_charges": "a lot"})
        no_id = client.post("/predict", json={k: v for k, v in row.items() if k != "customer_id"})
        online = client.post("/predict", json={"entity_ids": ["C00001"]})
        good = client.post("/predict", json=row)
        health, ready = client.get("/health"), client.get("/ready")
        openapi = client.get("/openapi.json").json()

    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "rows", 1, "tenure"]
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "monthly_charges"]
    assert no_id.status_code == 422 and no_id.json()["detail"][0]["loc"] == ["body", "customer_id"]
    assert online.status_code == 422 and "serving.redis" in online.json()["detail"][0]["msg"]
    assert good.status_code == 200 and good.json()["version"] in (1, 2)
    assert good.headers["x-model-versions"] in ("champion=v1", "challenger=v2")
    assert health.json() == {"status": "ok"} and ready.json() == {"ready": True, "champion": 1, "challenger": 2}
    signature = {name for name, _ in registry.input_schema(served_models["name"], 1)}
    assert set(openapi["components"]["schemas"]["Row"]["properties"]) == signature | {"customer_id"}


def test_ab_report_joins_labels_and_the_canary_promotes_the_challenger(
    served_models: dict[str, Any], registry: Registry, tmp_path: Path
) -> None:
    import yaml

    name = served_models["name"]
    spec_dict = yaml.safe_load(Path(served_models["spec_path"]).read_text())
    log_dir = tmp_path / "log"
    spec_dict["serving"] = {
        "prediction_log": {"path": str(log_dir), "flush_seconds": 0.2},
        "canary": {"min_labelled": 50, "metric": "roc_auc", "max_regression": 1.0, "action": "promote"},
    }
    spec_path = tmp_path / "pipeline.yaml"
    spec_path.write_text(yaml.safe_dump(spec_dict))
    config, _ = _config(served_models, tmp_path)
    rows = _rows(served_models, 2000)
    with Server(create_app(config, registry)) as server, httpx.Client(base_url=server.url) as client:
        for start in range(0, 2000, 100):
            assert client.post("/predict", json={"rows": rows[start : start + 100]}).is_success

    dry = CliRunner().invoke(cli, ["ab-report", str(spec_path), "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)
    figures = {v["version"]: v for v in report["versions"]}
    assert figures[1]["labelled"] + figures[2]["labelled"] == 2000  # every customer's label joined
    assert 0.07 <= figures[2]["labelled"] / 2000 <= 0.13
    assert 0.6 < figures[1]["metrics"]["roc_auc"] < 1.0
    assert report["canary"]["decision"] == "pass" and report["applied"] is None
    assert registry.by_alias(name, "champion").version == 1  # type: ignore[union-attr]

    applied = CliRunner().invoke(cli, ["ab-report", str(spec_path), "--json"])
    assert applied.exit_code == 0, applied.output
    assert "promoted v2" in json.loads(applied.stdout)["applied"]
    assert registry.by_alias(name, "champion").version == 2  # type: ignore[union-attr]
    assert registry.by_alias(name, "challenger") is None
    assert registry.by_alias(name, "previous").version == 1  # type: ignore[union-attr]


def test_online_features_from_redis_give_the_same_prediction_as_the_offline_row(
    served_models: dict[str, Any], registry: Registry, redis_url: str, tmp_path: Path
) -> None:
    import yaml

    from retrainer.serving.online_features import OnlineFeatures

    spec_dict = yaml.safe_load(Path(served_models["spec_path"]).read_text())
    prefix = f"retrainer-test-{secrets.token_hex(4)}"
    spec_dict["serving"] = {"redis": {"url": redis_url, "ttl": "10m", "prefix": prefix}}
    spec_path = tmp_path / "pipeline.yaml"
    spec_path.write_text(yaml.safe_dump(spec_dict))
    spec = load_spec(spec_path)
    online = OnlineFeatures.from_spec(spec)
    try:
        done = CliRunner().invoke(cli, ["features", "materialize", str(spec_path)])
        assert done.exit_code == 0, done.output
        assert "7043 entities x 19 features" in done.output
        assert 0 < online.client.ttl(online.entity_key("C00001")) <= 600
        assert online.version() is not None

        config, _ = _config(served_models, tmp_path)
        from dataclasses import replace

        config = replace(config, online=OnlineFeatures.from_spec(spec))
        frame = served_models["frame"]
        sample = frame.iloc[list(range(0, 7043, 70))]  # 101 customers, some with a null total_charges
        ids = sample["customer_id"].tolist()
        with Server(create_app(config, registry)) as server, httpx.Client(base_url=server.url) as client:
            by_id = client.post("/predict", json={"entity_ids": ids}).json()["predictions"]
            by_row = client.post("/predict", json={"rows": json.loads(sample.to_json(orient="records"))}).json()
            unknown = client.post("/predict", json={"entity_ids": ["nobody"]})
        models = {v: registry.load_model(served_models["name"], v) for v in (1, 2)}
        columns = [name for name, _ in registry.input_schema(served_models["name"], 1)]
        for i, answer in enumerate(by_id):
            offline = models[answer["version"]].predict_proba(sample[columns].iloc[[i]])[0, 1]
            assert answer["entity_id"] == ids[i]
            assert answer["probability"] == pytest.approx(offline, rel=1e-9, abs=1e-12)
            assert by_row["predictions"][i]["probability"] == pytest.approx(offline, rel=1e-9, abs=1e-12)
        assert {a["version"] for a in by_id} == {1, 2}  # both arms were checked
        assert unknown.status_code == 404 and "nobody" in unknown.json()["detail"]
    finally:
        online.delete_all()
        online.close()
    assert not list(online.client.scan_iter(match=f"{prefix}:*"))


# ------------------------------------------------------------------------ every task, and its threshold
def _served(models: dict[str, Any]) -> tuple[ServingConfig, Registry]:
    spec = load_spec(models["spec_path"])
    return ServingConfig.from_spec(spec, RunStore(spec.store)), Registry.for_spec(spec, RunStore(spec.store))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))  # type: ignore[no-any-return]


def _ab_report(models: dict[str, Any]) -> dict[str, Any]:
    done = CliRunner().invoke(cli, ["ab-report", str(models["spec_path"]), "--dry-run", "--json"])
    assert done.exit_code == 0, done.output
    return {v["version"]: v for v in json.loads(done.stdout)["versions"]}


def test_a_multiclass_model_answers_with_the_class_and_every_class_probability(
    served_penguins: dict[str, Any],
) -> None:
    config, registry = _served(served_penguins)
    name, frame = served_penguins["name"], served_penguins["frame"]
    rows = _records(frame.sample(120, random_state=3))
    with Server(create_app(config, registry)) as server, httpx.Client(base_url=server.url) as client:
        one = client.post("/predict", json=rows[0])
        answers = client.post("/predict", json={"rows": rows}).json()["predictions"]
        metadata = client.get("/metadata").json()
        openapi = client.get("/openapi.json").json()

        registry.set_alias(name, "challenger", 2)  # the binary model of the same inputs: refused
        try:
            assert server.app.state.watcher.refresh() is False
            refused = server.app.state.watcher.last_error
            after = client.post("/predict", json={"rows": rows[:20]}).json()["predictions"]
        finally:
            registry.delete_alias(name, "challenger")

    species = ["Adelie", "Chinstrap", "Gentoo"]
    fields = {"entity_id", "alias", "version", "prediction", "probability", "probabilities"}
    assert one.status_code == 200 and set(one.json()) == fields
    for row, answer in zip(rows, answers, strict=True):
        assert answer["prediction"] in species and set(answer["probabilities"]) == set(species)
        assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-9)
        assert answer["probability"] == max(answer["probabilities"].values())
        assert answer["prediction"] == max(answer["probabilities"], key=answer["probabilities"].get)
        assert (answer["entity_id"], answer["version"]) == (str(row["penguin_id"]), 1)
    assert sum(a["prediction"] == r["species"] for a, r in zip(answers, rows, strict=True)) / len(rows) > 0.9
    model = registry.load_model(name, 1)
    columns = [c for c, _ in registry.input_schema(name, 1)]
    offline = model.predict_proba(frame.loc[frame["penguin_id"] == rows[0]["penguin_id"], columns])[0]
    assert list(one.json()["probabilities"].values()) == pytest.approx(offline.tolist(), rel=1e-9)
    assert metadata["task"] == {"task": "multiclass", "labels": species}
    assert metadata["champion"]["threshold"] is None  # a multiclass model decides by its most probable class
    answer_schema = openapi["components"]["schemas"]["PredictResponse"]
    assert {"probabilities", "threshold", "label"} <= set(answer_schema["properties"])
    assert set(answer_schema["required"]) == {"entity_id", "alias", "version", "prediction"}
    assert "v2 is a binary model, the served one a multiclass model" in refused
    assert {a["version"] for a in after} == {1}  # the champion kept serving, every row

    logged = config.prediction_log.read()  # type: ignore[union-attr]
    assert set(logged["prediction"]) <= set(species) and logged["probability"].between(0, 1).all()
    figures = _ab_report(served_penguins)  # labels joined from the spec's source, per version, with its task
    assert figures[1]["labelled"] == len(set(r["penguin_id"] for r in rows))
    assert figures[1]["metrics"]["accuracy"] > 0.9 and figures[1]["metrics"]["f1_macro"] > 0.85
    assert "log_loss" not in figures[1]["metrics"]  # the log keeps the decided class only


def test_a_regression_model_answers_a_value_in_dollars(served_ames: dict[str, Any]) -> None:
    config, registry = _served(served_ames)
    name, frame = served_ames["name"], served_ames["frame"]
    sample = frame.sample(300, random_state=5)
    with Server(create_app(config, registry)) as server, httpx.Client(base_url=server.url) as client:
        answers = client.post("/predict", json={"rows": _records(sample)}).json()["predictions"]
        metadata = client.get("/metadata").json()

    assert all(set(a) == {"entity_id", "alias", "version", "prediction"} for a in answers)
    predicted = pd.Series([a["prediction"] for a in answers], dtype=float)
    assert predicted.min() > 30_000 and predicted.max() < 1_000_000  # dollars, not log dollars
    errors = (predicted - sample["Sale_Price"].to_numpy()).abs()
    assert errors.mean() < 40_000  # a fair model of the price
    model = registry.load_model(name, 1)
    columns = [c for c, _ in registry.input_schema(name, 1)]
    assert predicted.tolist() == pytest.approx(model.predict(sample[columns]).tolist(), rel=1e-9)
    assert metadata["task"] == {"task": "regression", "transform": "log"} and metadata["champion"]["threshold"] is None

    logged = config.prediction_log.read()  # type: ignore[union-attr]
    assert logged["probability"].isna().all()
    assert sorted(logged["prediction"].astype(float)) == pytest.approx(sorted(predicted), rel=1e-12)
    metrics = _ab_report(served_ames)[1]["metrics"]
    assert metrics["mae"] == pytest.approx(errors.mean(), rel=1e-6) and metrics["rmse"] >= metrics["mae"]


def test_each_binary_version_answers_at_the_threshold_stored_with_it(
    served_models: dict[str, Any], registry: Registry, tmp_path: Path
) -> None:
    chosen = registry.version(served_models["name"], 1).decision_threshold(0.5)
    assert chosen != 0.5, "threshold_metric: f1 should choose another threshold for Telco"
    config, _ = _config(served_models, tmp_path)
    rows = _rows(served_models, 1000)
    with Server(create_app(config, registry)) as server, httpx.Client(base_url=server.url) as client:
        answers = client.post("/predict", json={"rows": rows}).json()["predictions"]
        metadata = client.get("/metadata").json()

    thresholds = {1: chosen, 2: 0.5}  # v2 has no threshold tag: the spec's evaluation.decision_threshold
    for answer in answers:
        assert answer["threshold"] == thresholds[answer["version"]]
        assert answer["prediction"] == int(answer["probability"] >= answer["threshold"])
    champion = [a for a in answers if a["version"] == 1]
    assert all(a["label"] == ("Yes" if a["prediction"] else "No") for a in champion)
    assert all("label" not in a for a in answers if a["version"] == 2)  # no task tag: its labels are unknown
    between = [a for a in champion if min(chosen, 0.5) <= a["probability"] < max(chosen, 0.5)]
    assert between, "no champion answer between the two thresholds: the test shows nothing"
    assert all(a["prediction"] == int(chosen < 0.5) for a in between)  # decided at its own threshold
    assert metadata["task"]["task"] == "binary" and metadata["decision_threshold"] == chosen
    assert (metadata["champion"]["threshold"], metadata["challenger"]["threshold"]) == (chosen, 0.5)
