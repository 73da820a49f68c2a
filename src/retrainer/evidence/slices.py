"""Per-slice metrics: segment labels of a column, the metric per segment, and the slices that regress."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from retrainer.metrics import better, get_metric

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


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
