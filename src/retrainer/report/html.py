"""The report's HTML: plain string building with every value escaped and every image a data: URI.

No external assets (no CDN, no fonts, no scripts), so the file opens anywhere, offline, as it is.
What differs by task is read from the run's task (`target_info`) and from the artifacts themselves:
the metrics are the task's `shown_metrics()`, the slice and fairness columns are whatever figures
the stages wrote, and the plots are those `plots.OUTPUT_PLOTS` draws for the model's output.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from html import escape
from typing import TYPE_CHECKING, Any

from retrainer.outcomes import headline

if TYPE_CHECKING:
    from retrainer.report.plots import PlotCache
    from retrainer.spec import Spec
    from retrainer.tasks import Task

STYLE = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;background:#f5f6f8;color:#222}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{margin:0 0 4px 0}h2{border-bottom:2px solid #dde;padding-bottom:4px;margin-top:32px}
section{background:#fff;border-radius:8px;padding:8px 20px 16px;margin:16px 0;box-shadow:0 1px 3px #0002}
table{border-collapse:collapse;margin:8px 0;font-size:14px}
th,td{border:1px solid #dde;padding:4px 8px;text-align:left}th{background:#eef}
.decision{font-size:20px;padding:14px 18px;border-radius:8px;color:#fff;margin:12px 0}
.promoted{background:#2e7d32}.kept_champion,.unchanged,.registered{background:#1565c0}
.rejected{background:#e65100}.failed,.interrupted,.running,.partial{background:#b71c1c}
.ok{color:#2e7d32;font-weight:bold}.bad{color:#c62828;font-weight:bold}.muted{color:#777}
img{max-width:100%;height:auto;border:1px solid #eee;margin:6px}
.grid{display:flex;flex-wrap:wrap;gap:8px}.grid img{width:48%}
"""


def render(
    record: Mapping[str, Any], artifacts: Mapping[str, Any], spec: Spec | None, cache: PlotCache | None = None
) -> str:
    """The whole page for one run."""
    from retrainer.report.plots import run_plots, spec_slices
    from retrainer.tasks import from_info

    threshold = _threshold(artifacts, spec)
    task = from_info(artifacts.get("target_info"))
    if spec is not None:
        plots = run_plots(artifacts, spec.target.column, threshold, cache, spec_slices(spec))
    else:  # the spec file moved: no target column, so only the plots that need none
        kept = ("explanation", "drift", "target_info")
        plots = run_plots({k: artifacts[k] for k in kept if k in artifacts}, "", threshold)
    body = [
        _decision(record, artifacts),
        _data_quality(artifacts),
        _drift(artifacts, plots),
        _tuning(artifacts),
        _metrics(artifacts, plots, threshold, task),
        _slices(artifacts),
        _fairness(artifacts, task),
        _explanation(artifacts, plots, task),
        _readiness(artifacts),
        _lineage(record, artifacts),
    ]
    title = f"retrainer report: {record.get('pipeline', '')} run {record.get('run_id', '')}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><main><h1>{escape(title)}</h1>"
        f'<p class="muted">started {escape(str(record.get("started_at", "")))}, '
        f"{_num(record.get('seconds'), '.1f')} s</p>" + "".join(body) + "</main></body></html>"
    )


# ------------------------------------------------------------------------------------ building blocks


def _section(title: str, *parts: str) -> str:
    anchor = title.lower().replace(" ", "-")
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{"".join(parts)}</section>'


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    lines = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{lines}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, _Raw):
        return value.html
    if isinstance(value, float):
        return f"{value:.4f}"
    if value is None:
        return '<span class="muted">–</span>'
    return escape(str(value))


class _Raw:
    """Pre-built HTML for a table cell (already escaped)."""

    def __init__(self, html: str) -> None:
        self.html = html


_WARNING = _Raw("<b>warning</b>")


def _verdict(passed: bool | None, yes: str = "pass", no: str = "FAIL") -> _Raw:
    if passed is None:
        return _Raw('<span class="muted">not judged</span>')
    return _Raw(f'<span class="ok">{yes}</span>' if passed else f'<span class="bad">{no}</span>')


def _num(value: Any, fmt: str = ".4f") -> str:
    return format(value, fmt) if isinstance(value, int | float) else "–"


def _missing(what: str) -> str:
    return f'<p class="muted">{escape(what)}</p>'


def _threshold(artifacts: Mapping[str, Any], spec: Spec | None) -> float:
    evaluation = artifacts.get("evaluation") or {}
    chosen = evaluation.get("decision_threshold")
    return float(chosen or (spec.evaluation.decision_threshold if spec else 0.5))


# ------------------------------------------------------------------------------------ sections


def _decision(record: Mapping[str, Any], artifacts: Mapping[str, Any]) -> str:
    outcome = str(record.get("status", "unknown"))
    words = headline(outcome, record.get("model_version"), record.get("champion_version"))
    banner = (
        f'<div class="decision {escape(outcome)}"><b>{escape(words)}</b>: {escape(str(record.get("reason", "")))}</div>'
    )
    decision = artifacts.get("decision")
    rows = []
    if decision:
        rows = [
            ("winner", decision.get("winner")),
            ("metric", decision.get("metric")),
            ("challenger score", decision.get("challenger_score")),
            ("champion score", decision.get("champion_score")),
            ("champion version", decision.get("champion_version")),
        ]
    return _section("Decision", banner, _table(("", "value"), rows) if rows else "")


def _data_quality(artifacts: Mapping[str, Any]) -> str:
    validation = artifacts.get("validation")
    if not validation:
        return _section("Data quality", _missing("the run stopped before validation finished"))
    rows = [
        (
            c.get("column") or "(table)",
            c["name"],
            _verdict(c["passed"]) if c["passed"] or c.get("severity", "error") == "error" else _WARNING,
            c.get("message", ""),
        )
        for c in validation["checks"]
    ]
    left_out = (artifacts.get("feature_schema") or {}).get("left_out") or {}
    rows += [(column, "left out of the features", _WARNING, why) for column, why in left_out.items()]
    split = artifacts.get("split_info") or {}
    sizes = ", ".join(
        f"{name} {part['rows']:,}" for name, part in split.items() if isinstance(part, dict) and part.get("rows")
    )
    source = artifacts.get("source_info") or {}
    warned = sum(1 for row in rows if row[2] is _WARNING)
    intro = (
        f"<p>{len(rows)} checks ({warned} warning{'s' if warned != 1 else ''}: reported, not gates); "
        f"rows: {escape(str(source.get('rows', '–')))}; split: {escape(sizes or '–')}</p>"
    )
    return _section("Data quality", intro, _table(("column", "check", "result", "detail"), rows))


def _drift(artifacts: Mapping[str, Any], plots: Mapping[str, bytes]) -> str:
    drift = artifacts.get("drift")
    if not drift:
        return _section("Drift", _missing("the run stopped before the drift check"))
    features = drift.get("features", [])
    if not features:
        why = drift.get("note") or "no features were compared"
        first = " (this is the first model)" if "no champion" in why else ""
        return _section("Drift", _missing(f"not measured: {why}{first}"))
    drifted = drift.get("drifted_features", [f["name"] for f in features if f.get("drifted")])
    rows = [
        (
            f["name"],
            f.get("kind"),
            f.get("ks"),
            f.get("wasserstein"),
            f.get("psi"),
            f.get("js"),
            f.get("unseen"),  # text columns: new words beyond what a fresh sample shows
            _verdict(not f.get("drifted"), "stable", "DRIFTED"),
        )
        for f in features
    ]
    named = ": " + escape(", ".join(map(str, drifted))) if drifted else ""
    intro = f"<p>{len(drifted)} of {len(features)} features drifted{named}.</p>"
    return _section(
        "Drift",
        intro,
        _img(plots.get("drift"), "drift per feature"),
        _table(("feature", "kind", "KS", "Wasserstein", "PSI", "JS", "unseen words", "verdict"), rows),
    )


def _tuning(artifacts: Mapping[str, Any]) -> str:
    tuning = artifacts.get("tuning")
    if not tuning:
        return _section("Tuning history", _missing("the run stopped before tuning finished"))
    best = tuning["best_candidate"]
    rows = [
        (
            name + (" (chosen)" if name == best else ""),
            r["best_value"],
            r["n_trials"],
            r.get("n_pruned"),
            r.get("n_not_started", 0),
            _params(r["best_params"]),
        )
        for name, r in tuning["candidates"].items()
    ]
    trials = [
        (name, t["number"], t["state"], t["value"], _params(t["params"]))
        for name, r in tuning["candidates"].items()
        for t in r.get("history", [])
    ]
    return _section(
        "Tuning history",
        f"<p>cross-validated {escape(tuning['metric'])} per candidate (Optuna); chosen: <b>{escape(best)}</b></p>",
        _table(
            ("candidate", f"best CV {tuning['metric']}", "trials", "pruned", "not started (too costly)", "best params"),
            rows,
        ),
        "<h3>Trials</h3>",
        _table(("candidate", "trial", "state", "value", "params"), trials),
    )


def _params(params: Mapping[str, Any]) -> str:
    """Hyper-parameters in one line, floats to 4 significant digits."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _metrics(artifacts: Mapping[str, Any], plots: Mapping[str, bytes], threshold: float, task: Task) -> str:
    from retrainer.report.plots import OUTPUT_STEMS

    evaluation = artifacts.get("evaluation")
    if not evaluation:
        return _section("Metrics", _missing("the run stopped before evaluation finished"))
    decision = artifacts.get("decision") or {}
    evidence = decision.get("evidence") or {}
    champion = decision.get("champion_metrics") or {}
    ci = evidence.get("challenger_ci")
    intervals = evidence.get("intervals") or {}
    test = evaluation["test"]
    # the task's telling metrics, then any other the run gates or decides on
    named = [*task.shown_metrics(), *evaluation.get("thresholds", {}), decision.get("metric")]
    shown = [name for name in dict.fromkeys(named) if name in test]
    rows = []
    for name in shown:
        bounds = intervals.get(name)
        interval = f"[{bounds[0]:.4f}, {bounds[1]:.4f}]" if bounds else None
        rows.append((name, test[name], interval, champion.get(name), evaluation.get("oot", {}).get(name)))
    cut = f", decision threshold {threshold:g}" if task.has_decision_threshold else ""
    parts = [
        f"<p>{escape(task.name)} model, test set{cut}; "
        f"thresholds {escape(json.dumps(evaluation.get('thresholds', {})))}</p>",
        _table(
            (
                "metric",
                "challenger",
                f"{round((ci or {}).get('confidence', 0.95) * 100)} % CI",
                "champion",
                "out of time",
            ),
            rows,
        ),
    ]
    others = [name for name in test if name not in shown]
    if others:
        parts.append(_missing("also computed: " + ", ".join(f"{name} {_num(test[name])}" for name in others)))
    if decision and not champion:
        parts.append(_missing("no champion column: no champion was scored on this test set (the first model)"))
    if not evaluation.get("oot"):
        parts.append(
            _missing("no out-of-time column: the split kept no out-of-time rows (split.oot_size, split.oot_window)")
        )
    boot = evidence.get("bootstrap")
    if boot:
        parts.append(
            f"<p>Paired bootstrap ({boot['n_bootstrap']} resamples of the same test rows"
            + (
                f", {boot['resample_rows']:,} rows each, the interval rescaled to all of them"
                if boot.get("resample_rows")
                else ""
            )
            + "): "
            f"gain in {escape(boot['metric'])} "
            f"<b>{boot['difference']:+.4f}</b>, {boot['confidence'] * 100:.0f} % CI "
            f"[{boot['low']:+.4f}, {boot['high']:+.4f}] "
            f"({'excludes' if boot['low'] > 0 or boot['high'] < 0 else 'includes'} zero)</p>"
        )
    note = task.metrics_note(evidence)  # an anomaly detector's checks, said to be checks
    if note:
        parts.append(f"<p>{escape(note)}</p>")
    grid = "".join(_img(plots.get(k), k.replace("_", " ")) for k in ("comparison", *OUTPUT_STEMS))
    if not grid:
        parts.append(_missing("no plots: the report could not load the model and test set (is the spec file moved?)"))
    return _section("Metrics", *parts, f'<div class="grid">{grid}</div>')


def _slices(artifacts: Mapping[str, Any]) -> str:
    decision = artifacts.get("decision") or {}
    evidence = decision.get("evidence") or {}
    slices = evidence.get("slices") or {}
    if not slices:
        return _section("Slices", _missing("no slices in the spec (evaluation.slices)"))
    metric = evidence["metric"]
    parts = [
        f"<p>{escape(metric)} per segment; a slice with at least {evidence['min_slice_size']} rows "
        f"may not drop by more than {evidence['max_slice_regression']}.</p>"
    ]
    for column, both in slices.items():
        old = both.get("champion") or {}
        new = both["challenger"]
        # the counts a slice has besides its rows: positives for a binary metric, none otherwise
        counts = list(dict.fromkeys(k for s in new.values() for k in s if k not in ("rows", metric)))
        rows = [
            (label, s["rows"], *(s.get(k) for k in counts), s[metric], (old.get(label) or {}).get(metric))
            for label, s in new.items()
        ]
        parts += [
            f"<h3>{escape(column)}</h3>",
            _table(("segment", "rows", *counts, "challenger", "champion"), rows),
        ]
    failures = evidence.get("slice_failures") or []
    parts.append(
        "<p class='bad'>" + escape("; ".join(failures)) + "</p>" if failures else "<p class='ok'>no slice regressed</p>"
    )
    return _section("Slices", *parts)


def _fairness(artifacts: Mapping[str, Any], task: Task) -> str:
    report = artifacts.get("fairness")
    if not report or not report.get("enabled"):
        return _section("Fairness", _missing("no fairness check in the spec (evaluation.fairness)"))
    classes = [str(label) for label in (artifacts.get("target_info") or {}).get("labels") or []]
    groups = report["groups"]
    figures = list(dict.fromkeys(k for r in groups.values() for k in r if k not in ("rows", "counted")))
    headers, rows = ["group", "rows"], []
    for figure in figures:
        width = max((len(r[figure]) for r in groups.values() if isinstance(r.get(figure), list)), default=0)
        names = classes if len(classes) == width else [str(c) for c in range(width)]
        headers += [f"{_words(figure)}: {name}" for name in names] if width else [_words(figure)]
    for group, r in groups.items():
        cells: list[Any] = [group, r["rows"]]
        for figure in figures:
            value = r.get(figure)
            cells += list(value) if isinstance(value, list) else [value]
        rows.append((*cells, _verdict(r["counted"], "judged", "too small")))
    bounds = task.fairness_limits(report)
    summary = _table(
        ("measure", "value", "bound", "result"),
        [
            (
                _words(figure),
                report.get(figure),
                _bound("≥" if side == "min" else "≤", bound),
                _within(report.get(figure), bound, above=side == "min"),
            )
            for figure, (side, bound) in bounds.items()
        ],
    )
    verdict = (
        "<p class='ok'>passed</p>"
        if report["passed"]
        else "<p class='bad'>failed: " + escape("; ".join(report["failures"])) + "</p>"
    )
    cut = f" at threshold {report['threshold']:g}" if task.has_decision_threshold else ""
    return _section(
        "Fairness",
        f"<p>groups of <b>{escape(report['group_column'])}</b>{cut} "
        f"(groups under {report['min_group_size']} rows are not judged)</p>",
        verdict,
        _table((*headers, ""), rows),
        summary,
    )


def _words(key: str) -> str:
    """A figure's key as a column name: 'positive_rate' → 'positive rate', 'tpr' → 'TPR'."""
    return key.upper() if len(key) <= 3 else key.replace("_", " ")


def _bound(sign: str, bound: float | None) -> str:
    return "no bound" if bound is None else f"{sign} {bound}"


def _within(value: float | None, bound: float | None, above: bool = False) -> _Raw:
    if value is None or bound is None:
        return _verdict(None)
    return _verdict(value >= bound if above else value <= bound)


def _explanation(artifacts: Mapping[str, Any], plots: Mapping[str, bytes], task: Task) -> str:
    from retrainer.report.plots import shap_by_class

    explanation = artifacts.get("explanation")
    if not explanation:
        return _section("Explanation", _missing("the run stopped before the model was explained"))
    top = sorted(explanation["mean_abs_shap"].items(), key=lambda p: -p[1])[:10]  # the store sorts JSON keys
    parts = [
        f"<p>SHAP ({escape(explanation['explainer'])} explainer) on {explanation['rows']} test rows; "
        f"importances from {escape(explanation['importance_kind'])}.</p>",
        '<div class="grid">' + _img(plots.get("shap_summary"), "SHAP summary"),
        _img(plots.get("importances"), "importances") + "</div>",
        _table(("feature", "mean |SHAP|"), top),
    ]
    by_class = shap_by_class(explanation, task)
    if by_class:
        parts += [
            "<h3>SHAP by class</h3><p>mean |SHAP| of each feature for each class's probability</p>",
            _img(plots.get("shap_by_class"), "SHAP by class"),
            _table(
                ("feature", *by_class),
                [(name, *(values.get(name) for values in by_class.values())) for name, _ in top],
            ),
        ]
    return _section("Explanation", *parts)


def _readiness(artifacts: Mapping[str, Any]) -> str:
    """The registered version loaded in a fresh process: its figures beside the champion's, and latency."""
    from retrainer.report.readiness_plots import latency_histogram

    ready = artifacts.get("readiness")
    if not ready or not ready.get("checked"):
        why = (ready or {}).get("reason") or "the run stopped before the readiness check"
        return _section("Readiness", _missing(f"not checked: {why}"))
    found, champion = ready["figures"], (ready.get("champion") or {})
    theirs = champion.get("figures") or {}
    labels = {
        "model_mb": "model size, MB",
        "load_s": "load time, s",
        "p50_ms": "one row p50, ms",
        "p95_ms": "one row p95, ms",
        "p99_ms": "one row p99, ms",
        "batch_p50_ms": "batch p50, ms",
        "batch_p95_ms": "batch p95, ms",
        "batch_p99_ms": "batch p99, ms",
        "memory_mb": "peak memory, MB",
    }
    rows = [(label, found.get(key), theirs.get(key) if champion else None) for key, label in labels.items()]
    ratio = ready.get("slowdown_vs_champion")
    verdict = _verdict(ready.get("passed"), "ready to serve", "NOT READY")
    against = ""
    if ratio:
        against = f"; {ratio:.1f}x slower than" if ratio >= 1 else f"; {1 / ratio:.1f}x faster than"
        against += f" champion v{champion['version']} (one-row p95)"
    intro = f"<p>v{ready['version']}: {verdict.html}, {ready.get('rows_checked', 0):,} test rows checked{against}.</p>"
    listed = [
        *(("failure", f) for f in ready.get("failures", [])),
        *(("warning", w) for w in ready.get("warnings", [])),
    ]
    requirements = [
        (r["requirement"], r.get("installed"), _verdict(not r.get("problem")), r.get("problem") or "")
        for r in ready.get("requirements", [])
    ]
    champion_title = f"champion v{champion['version']}" if champion else "champion"
    return _section(
        "Readiness",
        intro,
        _table(("finding", ""), listed) if listed else "",
        _table(("figure", f"v{ready['version']}", champion_title), rows),
        _img(latency_histogram(ready.get("latency_ms") or {}, ready.get("bounds") or {}), "request latency"),
        _table(("requirement", "installed", "result", "problem"), requirements) if requirements else "",
    )


def _lineage(record: Mapping[str, Any], artifacts: Mapping[str, Any]) -> str:
    source = artifacts.get("source_info") or {}
    training = artifacts.get("training") or {}
    registration = artifacts.get("registration") or {}
    rows = [
        ("run", record.get("run_id")),
        ("spec", record.get("spec_path")),
        ("spec digest", record.get("spec_digest")),
        ("as of", record.get("as_of")),
        ("source", source.get("url") or source.get("path")),
        ("data digest", source.get("data_digest")),
        ("model", training.get("candidate")),
        ("model params", json.dumps(training.get("params"), default=str) if training else None),
        ("registered version", registration.get("version")),
        ("MLflow run", registration.get("mlflow_run_id")),
    ]
    stages = [
        (s["name"], s["status"], s.get("seconds"), s.get("key"), s.get("summary")) for s in record.get("stages", [])
    ]
    return _section(
        "Lineage",
        _table(("", "value"), rows),
        "<h3>Stages</h3>",
        _table(("stage", "status", "seconds", "cache key", "summary"), stages),
    )
