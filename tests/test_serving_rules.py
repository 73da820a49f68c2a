"""The serving logic that needs no server: the A/B router, request schemas, the online comparison, the canary."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from retrainer.errors import SpecError
from retrainer.serving.ab_report import VersionFigures, canary_verdict, online_comparison
from retrainer.serving.router import BUCKETS, bucket, challenger_buckets, route
from retrainer.serving.schema import RequestSchema, error_details
from retrainer.spec import CanarySpec, spec_from_dict
from retrainer.tasks import from_info

IDS = [f"C{i:06d}" for i in range(20_000)]


def test_bucket_is_stable_across_processes_and_in_range() -> None:
    here = [bucket(e, "telco") for e in IDS[:50]]
    code = "from retrainer.serving.router import bucket; print([bucket(f'C{i:06d}', 'telco') for i in range(50)])"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert str(here) == there.strip()  # Python's own hash() is salted per process; ours must not be
    assert all(0 <= bucket(e) < BUCKETS for e in IDS)


def test_every_share_from_0_to_100_percent_is_met_within_one_and_a_half_points() -> None:
    buckets = [bucket(e, "telco") for e in IDS]
    for percent in range(0, 101):
        share = percent / 100
        measured = sum(b < challenger_buckets(share) for b in buckets) / len(IDS)
        assert abs(measured - share) <= 0.015, f"share {share}: measured {measured:.4f}"
        if percent in (0, 100):
            assert measured == share  # exactly nobody / everybody at the ends
        sample = range(0, len(IDS), 97)
        assert all((route(IDS[i], share, "telco") == "challenger") == (buckets[i] < percent * 100) for i in sample)


def test_raising_the_share_only_moves_entities_to_the_challenger() -> None:
    previous: set[str] = set()
    for share in (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.9, 1.0):
        current = {e for e in IDS[:5000] if route(e, share, "telco") == "challenger"}
        assert previous <= current, f"an entity left the challenger when the share rose to {share}"
        previous = current


def test_without_a_challenger_everyone_gets_the_champion_and_bad_shares_are_refused() -> None:
    assert {route(e, 0.5, has_challenger=False) for e in IDS[:1000]} == {"champion"}
    assert challenger_buckets(0.1) == BUCKETS // 10
    for bad in (-0.01, 1.01):
        with pytest.raises(ValueError, match="between 0 and 1"):
            challenger_buckets(bad)


def test_different_salts_split_independently() -> None:
    first = {e for e in IDS if route(e, 0.5, "model-a") == "challenger"}
    second = {e for e in IDS if route(e, 0.5, "model-b") == "challenger"}
    overlap = len(first & second) / len(IDS)
    assert 0.22 < overlap < 0.28  # independent halves overlap on a quarter


SCHEMA = RequestSchema([("tenure", "double"), ("contract", "string"), ("monthly_charges", "double")], "customer_id")
ROW = {"customer_id": "C1", "tenure": 3, "contract": "One year", "monthly_charges": None, "extra": "ignored"}


def test_request_shapes_single_batch_list_and_online() -> None:
    assert SCHEMA.parse(ROW) == ("single", [ROW])
    assert SCHEMA.parse({"rows": [ROW, ROW]})[0] == "batch"
    assert SCHEMA.parse([ROW])[0] == "batch"
    assert SCHEMA.parse({"entity_ids": ["C1", 2]}) == ("online", ["C1", "2"])


def test_an_optional_column_may_be_left_out_and_a_required_one_may_not() -> None:
    optional = RequestSchema([("tenure", "long"), ("total_charges", "double")], "customer_id", {"total_charges"})
    row = {"customer_id": "C1", "tenure": 3}
    assert optional.parse(row) == ("single", [row])
    with pytest.raises(ValidationError):
        optional.parse({"customer_id": "C1", "total_charges": 3.5})


@pytest.mark.parametrize(
    ("body", "location", "kind"),
    [
        ({k: v for k, v in ROW.items() if k != "tenure"}, ["body", "tenure"], "missing"),
        ({**ROW, "tenure": "long"}, ["body", "tenure"], "float_type"),
        ({**ROW, "tenure": "5"}, ["body", "tenure"], "float_type"),  # a number in a string: strict, not coerced
        ({**ROW, "tenure": True}, ["body", "tenure"], "float_type"),
        ({**ROW, "tenure": float("nan")}, ["body", "tenure"], "finite_number"),
        ({**ROW, "monthly_charges": float("inf")}, ["body", "monthly_charges"], "finite_number"),
        ({**ROW, "contract": 12}, ["body", "contract"], "string_type"),
        ({k: v for k, v in ROW.items() if k != "customer_id"}, ["body", "customer_id"], "missing"),
        ({"rows": [ROW, {**ROW, "monthly_charges": "x"}]}, ["body", "rows", 1, "monthly_charges"], "float_type"),
        ({"rows": []}, ["body", "rows"], "too_short"),
        ({"entity_ids": [None]}, ["body", "entity_ids", 0], None),
    ],
)
def test_a_bad_payload_names_the_offending_field(body: object, location: list[object], kind: str | None) -> None:
    with pytest.raises(ValidationError) as raised:
        SCHEMA.parse(body)
    details = error_details(raised.value)
    assert any(d["loc"][: len(location)] == location for d in details), details
    if kind:
        assert kind in {d["type"] for d in details}


def test_numeric_fields_take_json_numbers_and_null_only() -> None:
    """What is coerced: an integer to a float, null to a missing value the model imputes. Nothing else."""
    import json

    body = json.loads('{"customer_id": "C1", "tenure": 3, "contract": "x", "monthly_charges": null}')
    assert SCHEMA.parse(body)[0] == "single"
    for text in ('"5"', "NaN", "Infinity", "-Infinity", "true"):
        row = f'{{"customer_id": "C1", "tenure": {text}, "contract": "x", "monthly_charges": 0}}'
        with pytest.raises(ValidationError):
            SCHEMA.parse(json.loads(row))


def test_openapi_schema_lists_the_signature_columns() -> None:
    body, components = SCHEMA.openapi_schemas()
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in body["anyOf"]} == {"Row", "Batch", "Online"}
    assert set(components["Row"]["properties"]) == {"tenure", "contract", "monthly_charges", "customer_id"}
    assert set(components["Row"]["required"]) == {"tenure", "contract", "monthly_charges", "customer_id"}


def _log(rows: list[tuple[str, str, int, float | None]], predictions: list[object] | None = None) -> pd.DataFrame:
    """A prediction log as `PredictionLog.read` gives it: the prediction as text (binary: decided at 0.5)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    decided = predictions or [int(p is not None and p >= 0.5) for *_, p in rows]
    return pd.DataFrame(
        [
            {
                "ts": start + timedelta(seconds=i),
                "entity_id": e,
                "alias": a,
                "version": v,
                "prediction": str(decided[i]),
                "probability": p,
            }
            for i, (e, a, v, p) in enumerate(rows)
        ]
    )


CHURN = from_info({"task": "binary", "positive": "Yes", "labels": ["No", "Yes"]})


def test_online_comparison_counts_each_entity_once_per_version_and_joins_labels() -> None:
    log = _log(
        [
            ("a", "champion", 1, 0.1),
            ("a", "champion", 1, 0.9),  # latest prediction for a wins
            ("b", "champion", 1, 0.2),
            ("c", "challenger", 2, 0.8),
            ("d", "challenger", 2, 0.3),
            ("z", "challenger", 2, 0.5),  # no label yet
        ]
    )
    labels = pd.DataFrame({"id": ["a", "b", "c", "d"], "churn": ["Yes", "No", "Yes", "No"]})
    figures = {f.version: f for f in online_comparison(log, labels, "id", "churn", lambda version: (CHURN, 0.5))}
    assert (figures[1].predictions, figures[1].entities, figures[1].labelled) == (3, 2, 2)
    assert (figures[2].predictions, figures[2].entities, figures[2].labelled) == (3, 3, 2)
    assert figures[1].metrics["roc_auc"] == 1.0 and figures[1].metrics["accuracy"] == 1.0
    assert figures[2].aliases == ("challenger",)


def test_each_version_is_scored_at_its_own_threshold() -> None:
    log = _log(
        [("a", "champion", 1, 0.3), ("b", "champion", 1, 0.1), ("a", "challenger", 2, 0.3), ("b", "challenger", 2, 0.1)]
    )
    labels = pd.DataFrame({"id": ["a", "b"], "churn": ["Yes", "No"]})
    thresholds = {1: 0.5, 2: 0.2}
    figures = {f.version: f for f in online_comparison(log, labels, "id", "churn", lambda v: (CHURN, thresholds[v]))}
    assert figures[1].metrics["accuracy"] == 0.5 and figures[1].metrics["recall"] == 0.0  # 0.3 < 0.5: "No"
    assert figures[2].metrics["accuracy"] == 1.0  # 0.3 >= 0.2: "Yes"
    assert figures[1].metrics["roc_auc"] == figures[2].metrics["roc_auc"] == 1.0  # ranking needs no threshold


def test_multiclass_and_regression_versions_are_scored_on_what_the_log_keeps() -> None:
    species = from_info({"task": "multiclass", "labels": ["Adelie", "Chinstrap", "Gentoo"]})
    log = _log(
        [("a", "champion", 1, 0.9), ("b", "champion", 1, 0.6), ("c", "champion", 1, 0.8), ("d", "champion", 1, 0.7)],
        ["Adelie", "Gentoo", "Gentoo", "Chinstrap"],
    )
    labels = pd.DataFrame({"id": ["a", "b", "c", "d"], "species": ["Adelie", "Chinstrap", "Gentoo", "Chinstrap"]})
    [figures] = online_comparison(log, labels, "id", "species", lambda version: (species, 0.5))
    assert figures.metrics["accuracy"] == 0.75
    assert figures.metrics["f1_macro"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3, abs=1e-6)
    assert "log_loss" not in figures.metrics  # the log keeps the decided class, not every probability

    prices = from_info({"task": "regression", "transform": "log"})
    log = _log([("a", "champion", 3, None), ("b", "champion", 3, None)], [210000.5, 90000.0])
    labels = pd.DataFrame({"id": ["a", "b"], "price": [200000.5, 100000.0]})
    [figures] = online_comparison(log, labels, "id", "price", lambda version: (prices, 0.5))
    assert figures.metrics["mae"] == 10000.0 and figures.metrics["rmse"] == 10000.0
    rule = CanarySpec(min_labelled=2, metric=None, action="promote")
    waiting = canary_verdict(rule, figures, figures, default_metric="log_loss")
    assert waiting.decision == "wait" and "no online log_loss" in waiting.reason and "rmse" in waiting.reason
    assert canary_verdict(rule, figures, figures, default_metric="rmse").decision == "pass"


def _figures(version: int, labelled: int, **metrics: float) -> VersionFigures:
    return VersionFigures(version, ("x",), labelled, labelled, labelled, metrics)


@pytest.mark.parametrize(
    ("action", "challenger_auc", "decision", "done"),
    [
        ("promote", 0.80, "pass", "promote"),
        ("promote", 0.795, "pass", "promote"),  # within max_regression 0.01
        ("promote", 0.70, "fail", "rollback"),
        ("rollback", 0.85, "pass", "nothing"),
        ("rollback", 0.70, "fail", "rollback"),
        ("report", 0.70, "fail", "nothing"),
        ("report", 0.90, "pass", "nothing"),
    ],
)
def test_canary_rule(action: str, challenger_auc: float, decision: str, done: str) -> None:
    rule = CanarySpec(min_labelled=100, metric="roc_auc", max_regression=0.01, action=action)  # type: ignore[arg-type]
    verdict = canary_verdict(rule, _figures(1, 500, roc_auc=0.80), _figures(2, 120, roc_auc=challenger_auc))
    assert (verdict.decision, verdict.action) == (decision, done), verdict.reason


def test_canary_waits_for_labels_and_knows_lower_is_better() -> None:
    rule = CanarySpec(min_labelled=100, metric="log_loss", max_regression=0.0, action="promote")
    assert canary_verdict(rule, _figures(1, 500, log_loss=0.4), _figures(2, 99, log_loss=0.3)).decision == "wait"
    assert canary_verdict(rule, _figures(1, 500, log_loss=0.4), None).decision == "no_challenger"
    assert canary_verdict(rule, _figures(1, 500, log_loss=0.4), _figures(2, 100, log_loss=0.3)).action == "promote"
    assert canary_verdict(rule, _figures(1, 500, log_loss=0.4), _figures(2, 100, log_loss=0.5)).action == "rollback"


BASE = {"name": "x", "source": {"path": "data.csv"}, "target": "y"}


def test_serving_section_defaults_and_bad_values_name_their_key() -> None:
    spec = spec_from_dict(BASE)
    assert spec.serving.challenger_share == 0.1 and spec.serving.redis is None
    with_redis = spec_from_dict({**BASE, "serving": {"redis": {"ttl": "12h"}}})
    assert with_redis.serving.redis is not None and with_redis.serving.redis.url == "redis://127.0.0.1:6379/0"
    for section, key in (
        ({"challenger_share": 1.5}, "serving.challenger_share"),
        ({"canary": {"metric": "roc"}}, "serving.canary.metric"),
        ({"redis": {"ttl": "soon"}}, "serving.redis.ttl"),
        ({"prediction_log": {"path": "p", "url": "postgresql://x"}}, "serving.prediction_log"),
    ):
        with pytest.raises(SpecError, match=key):
            spec_from_dict({**BASE, "serving": section})


def test_serve_without_a_champion_and_materialize_without_redis_are_one_line_errors(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from retrainer.cli import app

    runner = CliRunner()
    (tmp_path / "store").mkdir()  # a store without the model (no store at all: StoreNotFound, exit 11)
    served = runner.invoke(app, ["serve", "nothing-here", "--store", str(tmp_path / "store"), "--entity-id", "id"])
    assert served.exit_code == 7, served.output
    assert "nothing-here has no 'champion' alias" in served.output and "Traceback" not in served.output
    spec = tmp_path / "pipeline.yaml"
    spec.write_text("name: x\nsource: {path: data.csv}\ntarget: y\n")
    materialized = runner.invoke(app, ["features", "materialize", str(spec)])
    assert materialized.exit_code == 3, materialized.output
    assert "serving.redis is not set" in materialized.output


def test_prediction_log_round_trips_through_parquet_and_postgresql(tmp_path: Path, pg_url: str) -> None:
    import secrets

    from sqlalchemy import create_engine, text

    from retrainer.serving.prediction_log import BatchingWriter, PredictionLog, log_rows

    table = f"predictions_{secrets.token_hex(4)}"
    rows = log_rows(["a", "b", "c"], ["champion", "challenger", "champion"], [1, 2, 1], [0, 1, 0], [0.1, 0.9, 0.2])
    # a class label and a value, with no probability: the columns hold every task's predictions
    rows += log_rows(["d", "e"], ["champion", "champion"], [3, 4], ["Gentoo", 215000.25], [0.7, None])
    try:
        for log in (PredictionLog(path=str(tmp_path / "log")), PredictionLog(url=pg_url, table=table)):
            assert log.read().empty
            writer = BatchingWriter(log, flush_seconds=60)
            writer.start()
            writer.append(rows[:2])
            writer.append(rows[2:])
            writer.close()  # flushes what is pending
            read = log.read().sort_values("entity_id")
            assert writer.written == 5 and writer.failed_writes == 0
            assert read["entity_id"].tolist() == ["a", "b", "c", "d", "e"]
            assert read["version"].tolist() == [1, 2, 1, 3, 4] and read["alias"].tolist()[1] == "challenger"
            assert read["prediction"].tolist() == ["0", "1", "0", "Gentoo", "215000.25"]
            assert read["probability"].tolist()[:4] == [0.1, 0.9, 0.2, 0.7] and pd.isna(read["probability"].iloc[4])
            assert read["request_id"].nunique() == 2  # one request's rows share its id
    finally:
        engine = create_engine(pg_url)
        with engine.begin() as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()
