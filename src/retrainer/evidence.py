"""The statistics behind a promotion: paired bootstrap, per-slice metrics and group fairness.

Pure functions of labels, scores and group labels (numpy arrays), so they are tested on small
inputs whose answers are known by hand. The stages (compare, fairness) and the report call them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from retrainer.metrics import better, get_metric, score

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


# --------------------------------------------------------------------------- paired bootstrap


@dataclass(frozen=True)
class BootstrapResult:
    """Challenger minus champion (in the "better" direction), with a percentile confidence interval."""

    metric: str
    difference: float
    low: float
    high: float
    confidence: float
    n_bootstrap: int
    challenger_low: float
    challenger_high: float
    champion_low: float
    champion_high: float
    resample_rows: int | None = None  # rows drawn per resample when fewer than the test set's (m-out-of-n)

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def interval_text(self) -> str:
        """'+0.0080, 95 % CI [+0.0030, +0.0130]'"""
        return f"{self.difference:+.4f}, {self.confidence:.0%} CI [{self.low:+.4f}, {self.high:+.4f}]".replace(
            "% CI", " % CI"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resample_counts(n_rows: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """How often each row is drawn in each resample (n_bootstrap x n_rows); shared by both models."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.multinomial(n_rows, np.full(n_rows, 1.0 / n_rows), size=n_bootstrap)


BOOTSTRAP_BLOCK_CELLS = 16_000_000
# m-out-of-n resamples are gathered rows (labels, scores, their terms: several arrays per block)
SUBSAMPLE_BLOCK_CELLS = 4_000_000


def bootstrap_blocks(
    metric: str,
    y_true: np.ndarray,
    probas: Sequence[np.ndarray],
    n_bootstrap: int,
    seed: int,
    thresholds: Sequence[float],
    max_rows: int | None = None,
) -> list[np.ndarray]:
    """`bootstrap_scores` of each of `probas` (cut at its own threshold) on the same resamples, drawn a
    block at a time.

    The whole count matrix is n_bootstrap x n_rows (1,000 x 200,000 test rows: 1.6 GB, and the
    weighted metrics make float copies of it). Blocks of about 16 M cells are drawn in turn from
    one generator, which gives the same resamples as drawing them all at once. With more than
    `max_rows` rows, each resample is `max_rows` rows drawn with replacement instead (see
    `subsample_scores`); `rescaled_interval` turns their spread into the n-row one.
    """
    import numpy as np

    n_rows = len(y_true)
    if max_rows is not None and n_rows > max_rows:
        return subsample_scores(metric, y_true, probas, n_bootstrap, seed, thresholds, max_rows)
    rng = np.random.default_rng(seed)
    per_block = max(1, BOOTSTRAP_BLOCK_CELLS // max(n_rows, 1))
    scores: list[list[np.ndarray]] = [[] for _ in probas]
    for start in range(0, n_bootstrap, per_block):
        size = min(per_block, n_bootstrap - start)
        counts = rng.multinomial(n_rows, np.full(n_rows, 1.0 / n_rows), size=size)
        for collected, proba, threshold in zip(scores, probas, thresholds, strict=True):
            collected.append(bootstrap_scores(metric, y_true, proba, counts, threshold))
    return [np.concatenate(parts) if parts else np.empty(0) for parts in scores]


def subsample_scores(
    metric: str,
    y_true: np.ndarray,
    probas: Sequence[np.ndarray],
    n_bootstrap: int,
    seed: int,
    thresholds: Sequence[float],
    rows: int,
) -> list[np.ndarray]:
    """The m-out-of-n bootstrap: each resample is `rows` (m) row numbers drawn with replacement from the
    n, shared by every model, and scored on those rows only.

    The full bootstrap costs n_bootstrap x n (1,000 x 2 M test rows: 2 G cells, most of an hour);
    this costs n_bootstrap x m whatever n is. The metrics on m rows spread sqrt(n / m) times wider
    than on n rows, which `rescaled_interval` undoes (Bickel, Götze & van Zwet, 1997).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    once = np.ones((1, rows))  # every drawn row counts once: the metric on those rows
    ranked = [_RankedScores(proba) if metric in ("roc_auc", "pr_auc") else None for proba in probas]
    counted = all(_is_counted(metric, proba) for proba in probas)
    scores = [np.empty(n_bootstrap) for _ in probas]
    per_block = max(1, SUBSAMPLE_BLOCK_CELLS // rows)
    for start in range(0, n_bootstrap, per_block):
        drawn = rng.integers(0, len(y_true), size=(min(per_block, n_bootstrap - start), rows))
        if counted:  # the whole block at once: sums along each resample's rows
            drawn_y = y_true[drawn]
            for values, proba, threshold in zip(scores, probas, thresholds, strict=True):
                block = _from_sums(metric, drawn_y, proba[drawn], threshold, lambda terms: terms.sum(axis=1), rows)
                values[start : start + len(drawn)] = block
            continue
        for i, picked in enumerate(drawn, start=start):
            for values, proba, threshold, ranks in zip(scores, probas, thresholds, ranked, strict=True):
                if ranks is None:
                    values[i] = bootstrap_scores(metric, y_true[picked], proba[picked], once, threshold)[0]
                    continue
                rows_in_order = ranks.in_score_order(picked)
                sorted_scores, sorted_y = proba[rows_in_order], y_true[rows_in_order].astype(bool)
                if metric == "roc_auc":
                    values[i] = _sorted_roc_auc(sorted_scores, sorted_y, once)[0]
                else:
                    values[i] = _sorted_average_precision(sorted_scores[::-1], sorted_y[::-1], once)[0]
    return scores


class _RankedScores:
    """One model's scores sorted once, so a resample's rows come in score order by sorting integers."""

    def __init__(self, proba: np.ndarray) -> None:
        import numpy as np

        self.order = np.argsort(proba, kind="stable")
        self.position = np.empty_like(self.order)
        self.position[self.order] = np.arange(len(proba))

    def in_score_order(self, picked: np.ndarray) -> np.ndarray:
        import numpy as np

        return self.order[np.sort(self.position[picked])]


def rescaled_interval(
    values: np.ndarray, point: float, confidence: float, resample_rows: int, n_rows: int
) -> tuple[float, float]:
    """The percentile interval of `values`; when they come from m-out-of-n resamples (m < n), its ends
    moved towards the full-data `point` by sqrt(m / n).

    The m-row metric minus `point` spreads like the n-row metric minus the truth, times sqrt(n / m)
    (for metrics that average over rows, as all of ours do). At m = n this is the plain percentile
    interval, which is what runs below the cap.
    """
    import numpy as np

    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    if resample_rows >= n_rows:
        return float(low), float(high)
    shrink = float(np.sqrt(resample_rows / n_rows))
    return point + shrink * (float(low) - point), point + shrink * (float(high) - point)


def weighted_roc_auc(y_true: np.ndarray, proba: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC of every weighting (rows of `weights`) at once; ties count one half, as in scikit-learn.

    A bootstrap resample is a weighting by draw counts, so one sort serves every resample.
    """
    import numpy as np

    order = np.argsort(proba, kind="stable")
    return _sorted_roc_auc(proba[order], y_true[order].astype(bool), weights[:, order].astype(float))


def weighted_roc_auc_ovr(y_true: np.ndarray, proba: np.ndarray, weights: np.ndarray, by_support: bool) -> np.ndarray:
    """One-vs-rest ROC-AUC of a multiclass output for every weighting: each class's AUC against the
    rest, averaged (macro, or weighted by each class's share of the resample)."""
    import numpy as np

    w = weights.astype(float)
    per_class = np.column_stack([weighted_roc_auc(y_true == c, proba[:, c], w) for c in range(proba.shape[1])])
    if not by_support:
        result: np.ndarray = per_class.mean(axis=1)
        return result
    support = np.column_stack([w @ (y_true == c).astype(float) for c in range(proba.shape[1])])
    return (per_class * support).sum(axis=1) / support.sum(axis=1)


def _sorted_roc_auc(sorted_scores: np.ndarray, sorted_y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`weighted_roc_auc` of rows already in ascending score order (`sorted_y` boolean, `w` float)."""
    import numpy as np

    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    positive = np.add.reduceat(np.where(sorted_y, w, 0.0), starts, axis=1)
    negative = np.add.reduceat(np.where(sorted_y, 0.0, w), starts, axis=1)
    negatives_below = np.cumsum(negative, axis=1) - negative
    pairs = positive.sum(axis=1) * negative.sum(axis=1)
    wins = (positive * (negatives_below + 0.5 * negative)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, wins / pairs, np.nan)


def weighted_average_precision(y_true: np.ndarray, proba: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average precision (PR-AUC as scikit-learn computes it: sum of recall steps x precision) per weighting."""
    import numpy as np

    order = np.argsort(-proba, kind="stable")
    return _sorted_average_precision(proba[order], y_true[order].astype(bool), weights[:, order].astype(float))


def _sorted_average_precision(sorted_scores: np.ndarray, sorted_y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`weighted_average_precision` of rows already in descending score order."""
    import numpy as np

    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    positive = np.add.reduceat(np.where(sorted_y, w, 0.0), starts, axis=1)
    negative = np.add.reduceat(np.where(sorted_y, 0.0, w), starts, axis=1)
    true_pos, false_pos = np.cumsum(positive, axis=1), np.cumsum(negative, axis=1)
    total = positive.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(true_pos + false_pos > 0, true_pos / (true_pos + false_pos), 0.0)
        values = (positive / total * precision).sum(axis=1)
    return np.where(total[:, 0] > 0, values, np.nan)


def bootstrap_scores(
    metric: str, y_true: np.ndarray, proba: np.ndarray, counts: np.ndarray, threshold: float = 0.5
) -> np.ndarray:
    """The metric on every resample (NaN where a resample lacks a class the metric needs).

    `proba` is the model's output of any task (binary scores, n x k probabilities, values); a
    resample is a weighting of the rows by their draw counts.
    """
    import numpy as np

    if metric == "roc_auc":
        return weighted_roc_auc(y_true, proba, counts)
    if metric == "pr_auc":
        return weighted_average_precision(y_true, proba, counts)
    if metric in ("roc_auc_ovr", "roc_auc_ovr_weighted"):
        return weighted_roc_auc_ovr(y_true, proba, counts, by_support=metric.endswith("weighted"))
    if _is_counted(metric, proba):
        return _counted_metric(metric, y_true, proba, counts.astype(float), threshold)
    scorer = get_metric(metric)
    prediction = scorer.prediction(proba, threshold)
    if scorer.weighted is not None:
        return np.asarray(scorer.weighted(y_true, prediction, counts.astype(float)))
    values = np.empty(len(counts))  # any other metric: one scikit-learn call per resample, counts as weights
    for i, row in enumerate(counts):
        drawn = row > 0
        if not scorer.defined_on(y_true[drawn], proba[drawn]):
            values[i] = np.nan
            continue
        values[i] = float(scorer.func(y_true[drawn], prediction[drawn], sample_weight=row[drawn]))
    return values


_COUNTED = ("accuracy", "precision", "recall", "f1", "brier", "log_loss")


def _is_counted(metric: str, output: np.ndarray) -> bool:
    """A binary metric of one score per row with a weighted-sum form below (a multiclass output has 2 axes)."""
    return metric in _COUNTED and output.ndim == 1


def _counted_metric(metric: str, y: np.ndarray, proba: np.ndarray, w: np.ndarray, threshold: float) -> np.ndarray:
    """Metrics that are weighted sums over rows, for every weighting at once (0/0 gives 0, as sklearn's)."""
    return _from_sums(metric, y, proba, threshold, lambda values: w @ values, w.sum(axis=1))


def _from_sums(
    metric: str,
    y: np.ndarray,
    proba: np.ndarray,
    threshold: float,
    sum_of: Callable[[np.ndarray], np.ndarray],
    total: np.ndarray | float,
) -> np.ndarray:
    """A counted metric from `sum_of` (a weighted sum over rows, per resample) of per-row terms."""
    import numpy as np

    if metric == "brier":
        return sum_of((proba - y) ** 2) / total
    if metric == "log_loss":
        clipped = np.clip(proba, np.finfo(float).eps, 1 - np.finfo(float).eps)
        return -sum_of(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)) / total
    predicted = (proba >= threshold).astype(float)
    tp, fp = sum_of(predicted * y), sum_of(predicted * (1 - y))
    fn, tn = sum_of((1 - predicted) * y), sum_of((1 - predicted) * (1 - y))
    with np.errstate(invalid="ignore", divide="ignore"):
        values = {
            "accuracy": (tp + tn) / total,
            "precision": np.where(tp + fp > 0, tp / (tp + fp), 0.0),
            "recall": np.where(tp + fn > 0, tp / (tp + fn), 0.0),
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
        }
    return values[metric]


def metric_intervals(
    y_true: np.ndarray,
    proba: np.ndarray,
    metrics: Sequence[str],
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    threshold: float = 0.5,
    max_rows: int | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of each metric of one model on one test set (m-out-of-n above
    `max_rows` rows, see `bootstrap_blocks`)."""
    import numpy as np

    y = _truth(y_true)
    p = np.asarray(proba, dtype=float)
    resample_rows = min(len(y), max_rows or len(y))
    intervals = {}
    for metric in metrics:
        (values,) = bootstrap_blocks(metric, y, [p], n_bootstrap, seed, [threshold], max_rows)
        values = values[~np.isnan(values)]
        if not len(values):  # undefined on every resample (a class missing from the test set)
            continue
        point = score(metric, y, p, threshold) if resample_rows < len(y) else 0.0
        low, high = rescaled_interval(values, point, confidence, resample_rows, len(y))
        intervals[metric] = (round(low, 6), round(high, 6))
    return intervals


def paired_bootstrap(
    metric: str,
    y_true: Sequence[int] | np.ndarray,
    challenger: Sequence[float] | np.ndarray,
    champion: Sequence[float] | np.ndarray,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    threshold: float = 0.5,
    champion_threshold: float | None = None,
    max_rows: int | None = None,
) -> BootstrapResult:
    """Resample the same test rows for both models; the interval is of the per-resample difference.

    Each model is cut at its own decision threshold (`champion_threshold`, default `threshold`), the one
    it serves at, so threshold-dependent metrics compare what each model would actually decide. Above
    `max_rows` test rows each resample draws `max_rows` rows and the intervals are rescaled to the
    test set's size (`bootstrap_blocks`, `rescaled_interval`); the point estimates use every row."""
    import numpy as np

    y = _truth(y_true)
    p_new, p_old = np.asarray(challenger, dtype=float), np.asarray(champion, dtype=float)
    if not len(y) == len(p_new) == len(p_old):
        raise ValueError(f"labels and scores differ in length: {len(y)}, {len(p_new)}, {len(p_old)}")
    old_threshold = threshold if champion_threshold is None else champion_threshold
    new, old = bootstrap_blocks(metric, y, [p_new, p_old], n_bootstrap, seed, [threshold, old_threshold], max_rows)
    diffs = np.asarray(better(metric, new, old))  # type: ignore[arg-type]  # element-wise on arrays
    keep = ~np.isnan(diffs)
    new_point, old_point = score(metric, y, p_new, threshold), score(metric, y, p_old, old_threshold)
    point = better(metric, new_point, old_point)
    resample_rows = min(len(y), max_rows or len(y))
    low, high = rescaled_interval(diffs[keep], point, confidence, resample_rows, len(y))
    new_low, new_high = rescaled_interval(new[keep], new_point, confidence, resample_rows, len(y))
    old_low, old_high = rescaled_interval(old[keep], old_point, confidence, resample_rows, len(y))
    return BootstrapResult(
        metric,
        float(point),
        low,
        high,
        confidence,
        int(keep.sum()),
        new_low,
        new_high,
        old_low,
        old_high,
        resample_rows if resample_rows < len(y) else None,
    )


def _truth(y_true: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Labels as integers (class codes, 0/1), values as floats: a regression target is not cut to ints."""
    import numpy as np

    y = np.asarray(y_true)
    return y.astype(int) if y.dtype.kind in "biu" or (y.dtype.kind == "f" and np.all(y == np.round(y))) else y


# --------------------------------------------------------------------------- slices


def group_labels(values: pd.Series, bins: Sequence[float] | None = None) -> pd.Series:
    """Segment labels of a column: its values, or with `bins` [a, b, c] the labels 'x < b', 'x ≥ b'."""
    import pandas as pd

    name = str(values.name)
    if not bins:
        return values.astype("string").fillna("(missing)")
    edges = [float(b) for b in bins]
    labels = []
    for i, (low, high) in enumerate(itertools.pairwise(edges)):
        if i == 0:
            labels.append(f"{name} < {high:g}")
        elif i == len(edges) - 2:
            labels.append(f"{name} ≥ {low:g}")
        else:
            labels.append(f"{low:g} ≤ {name} < {high:g}")
    cut = pd.cut(values.astype(float), edges, right=False, labels=labels)
    return cut.astype("string").fillna("(out of bins)")


def slice_metrics(
    groups: pd.Series, y_true: np.ndarray, proba: np.ndarray, metric: str, threshold: float = 0.5
) -> dict[str, dict[str, Any]]:
    """Per segment: rows (and positives, for a binary metric) and the metric (None where the segment lacks a
    class it needs)."""
    scorer = get_metric(metric)
    binary = "binary" in scorer.tasks and proba.ndim == 1
    result: dict[str, dict[str, Any]] = {}
    labels = groups.to_numpy()
    for label in sorted(set(labels.tolist()), key=str):
        rows = labels == label
        y, p = y_true[rows], proba[rows]
        value = round(scorer.score(y, p, threshold), 6) if scorer.defined_on(y, p) and len(y) else None
        result[str(label)] = {"rows": int(rows.sum()), **({"positives": int(y.sum())} if binary else {}), metric: value}
    return result


def slice_regressions(
    metric: str,
    challenger: dict[str, dict[str, Any]],
    champion: dict[str, dict[str, Any]],
    *,
    min_slice_size: int,
    max_regression: float,
    column: str = "",
) -> list[str]:
    """Every slice (with at least `min_slice_size` rows) where the challenger is worse by more than allowed.

    For an error in the target's units (RMSE in dollars) `max_regression` is a share of the champion's
    error on that slice (0.02: 2 % worse), since an absolute bound would depend on the currency.
    """
    from retrainer.metrics import get_metric

    relative = get_metric(metric).in_target_units
    failures = []
    for label, stats in challenger.items():
        old = champion.get(label, {}).get(metric)
        new = stats.get(metric)
        if stats["rows"] < min_slice_size or new is None or old is None:
            continue
        drop = -better(metric, new, old) / (max(abs(old), 1e-12) if relative else 1.0)
        if drop > max_regression + 1e-12:
            where = label if not column or column in label else f"{column}={label}"
            if relative:
                change = f"rose {old:,.6g} → {new:,.6g} ({drop:.1%} worse > {max_regression:.1%}"
            else:
                change = f"fell {old:.4f} → {new:.4f} (−{drop:.4f} > {max_regression}"
            failures.append(f"{metric} on {where} {change}, {stats['rows']} rows)")
    return failures


# --------------------------------------------------------------------------- fairness


def group_rates(
    groups: pd.Series, y_true: np.ndarray, predicted: np.ndarray, min_group_size: int
) -> dict[str, dict[str, Any]]:
    """Per group: size, positive prediction rate, TPR and FPR (None where undefined); small groups flagged."""
    rates: dict[str, dict[str, Any]] = {}
    labels = groups.to_numpy()
    for label in sorted(set(labels.tolist()), key=str):
        rows = labels == label
        y, pred = y_true[rows].astype(int), predicted[rows].astype(int)
        positives, negatives = int(y.sum()), int((1 - y).sum())
        rates[str(label)] = {
            "rows": int(rows.sum()),
            "positive_rate": float(pred.mean()),
            "tpr": float(pred[y == 1].mean()) if positives else None,
            "fpr": float(pred[y == 0].mean()) if negatives else None,
            "counted": bool(rows.sum() >= min_group_size),
        }
    return rates


def fairness_summary(rates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Disparate impact (lowest / highest positive rate) and equalized-odds difference over counted groups."""
    counted = {g: r for g, r in rates.items() if r["counted"]}
    if len(counted) < 2:
        return {"disparate_impact": None, "equalized_odds_difference": None, "lowest_group": None}
    positive = {g: r["positive_rate"] for g, r in counted.items()}
    lowest, highest = min(positive, key=positive.__getitem__), max(positive, key=positive.__getitem__)
    impact = positive[lowest] / positive[highest] if positive[highest] > 0 else 1.0
    gaps = []
    for key in ("tpr", "fpr"):
        values = [r[key] for r in counted.values() if r[key] is not None]
        if len(values) >= 2:
            gaps.append(max(values) - min(values))
    return {
        "disparate_impact": round(impact, 6),
        "equalized_odds_difference": round(max(gaps), 6) if gaps else None,
        "lowest_group": lowest,
        "highest_group": highest,
    }


def fairness_failures(
    summary: dict[str, Any], min_disparate_impact: float | None, max_equalized_odds_difference: float | None
) -> list[str]:
    """The fairness thresholds a model misses, in words ('disparate impact 0.71 < 0.80 for age < 25')."""
    failures = []
    impact, odds = summary.get("disparate_impact"), summary.get("equalized_odds_difference")
    if min_disparate_impact is not None and impact is not None and impact < min_disparate_impact:
        failures.append(f"disparate impact {impact:.2f} < {min_disparate_impact:.2f} for {summary['lowest_group']}")
    if max_equalized_odds_difference is not None and odds is not None and odds > max_equalized_odds_difference:
        failures.append(f"equalized-odds difference {odds:.2f} > {max_equalized_odds_difference:.2f}")
    return failures


def class_group_rates(
    groups: pd.Series, y_true: np.ndarray, predicted: np.ndarray, n_classes: int, min_group_size: int
) -> dict[str, dict[str, Any]]:
    """Multiclass, per group: size, accuracy, recall averaged over its classes, and each class's selection rate."""
    import numpy as np

    rates: dict[str, dict[str, Any]] = {}
    labels = groups.to_numpy()
    for label in sorted(set(labels.tolist()), key=str):
        rows = labels == label
        y, pred = y_true[rows].astype(int), predicted[rows].astype(int)
        recalls = [float((pred[y == c] == c).mean()) for c in range(n_classes) if (y == c).any()]
        rates[str(label)] = {
            "rows": int(rows.sum()),
            "accuracy": float((pred == y).mean()),
            "macro_recall": float(np.mean(recalls)) if recalls else None,
            "selection_rates": [float((pred == c).mean()) for c in range(n_classes)],
            "counted": bool(rows.sum() >= min_group_size),
        }
    return rates


def class_fairness_summary(rates: dict[str, dict[str, Any]], class_names: Sequence[str]) -> dict[str, Any]:
    """The accuracy gap between counted groups, and per class the lowest / highest selection rate (its parity)."""
    counted = {g: r for g, r in rates.items() if r["counted"]}
    if len(counted) < 2:
        return {"accuracy_gap": None, "selection_rate_parity": None, "lowest_group": None}
    accuracy = {g: r["accuracy"] for g, r in counted.items()}
    lowest = min(accuracy, key=accuracy.__getitem__)
    parities = {}
    for c, name in enumerate(class_names):
        selected = [r["selection_rates"][c] for r in counted.values()]
        parities[str(name)] = min(selected) / max(selected) if max(selected) > 0 else 1.0
    worst = min(parities, key=parities.__getitem__)
    return {
        "accuracy_gap": round(max(accuracy.values()) - accuracy[lowest], 6),
        "selection_rate_parity": round(parities[worst], 6),
        "least_even_class": worst,
        "lowest_group": lowest,
        "per_class_parity": {k: round(v, 6) for k, v in parities.items()},
    }


def residual_group_errors(
    groups: pd.Series, y_true: np.ndarray, predicted: np.ndarray, min_group_size: int
) -> dict[str, dict[str, Any]]:
    """Regression, per group: size, mean absolute error and mean residual (prediction minus truth)."""
    import numpy as np

    errors: dict[str, dict[str, Any]] = {}
    labels = groups.to_numpy()
    for label in sorted(set(labels.tolist()), key=str):
        rows = labels == label
        residual = predicted[rows].astype(float) - y_true[rows].astype(float)
        errors[str(label)] = {
            "rows": int(rows.sum()),
            "mae": float(np.abs(residual).mean()),
            "mean_residual": float(residual.mean()),
            "counted": bool(rows.sum() >= min_group_size),
        }
    return errors


def residual_fairness_summary(errors: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The highest over the lowest group MAE, and the spread of the groups' mean residuals (bias gap)."""
    counted = {g: e for g, e in errors.items() if e["counted"]}
    if len(counted) < 2:
        return {"mae_ratio": None, "residual_gap": None, "worst_group": None}
    mae = {g: e["mae"] for g, e in counted.items()}
    worst, best = max(mae, key=mae.__getitem__), min(mae, key=mae.__getitem__)
    residuals = [e["mean_residual"] for e in counted.values()]
    return {
        "mae_ratio": round(mae[worst] / mae[best], 6) if mae[best] > 0 else None,
        "residual_gap": round(max(residuals) - min(residuals), 6),
        "worst_group": worst,
    }


def bound_failures(summary: Mapping[str, Any], bounds: Mapping[str, tuple[str, float | None]]) -> list[str]:
    """The summary's figures outside their bounds: {figure: ('min' | 'max', bound)}, in words."""
    failures = []
    for figure, (side, bound) in bounds.items():
        value = summary.get(figure)
        if bound is None or value is None:
            continue
        if (side == "min" and value < bound) or (side == "max" and value > bound):
            where = summary.get("lowest_group") or summary.get("worst_group")
            words = figure.replace("_", " ")
            failures.append(f"{words} {value:.2f} {'<' if side == 'min' else '>'} {bound:.2f} (group {where})")
    return failures
