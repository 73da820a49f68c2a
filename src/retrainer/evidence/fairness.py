"""Group fairness statistics per task: binary rates, multiclass selection rates, regression residuals.

Each task's `fairness` rule (`retrainer.tasks`) reads its per-group figures, summary and failures here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


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
