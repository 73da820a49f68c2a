"""The paired bootstrap behind a promotion: resampling, m-out-of-n resampling and percentile intervals.

Both models are scored on the same resamples of the same test rows (`scorers` gives the metric of
every resample at once), so the interval is of the difference itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from retrainer.evidence.scorers import (
    _from_sums,
    _is_counted,
    _sorted_average_precision,
    _sorted_roc_auc,
    bootstrap_scores,
)
from retrainer.metrics import better, score

if TYPE_CHECKING:
    import numpy as np


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
    groups: np.ndarray | None = None,
) -> list[np.ndarray]:
    """`bootstrap_scores` of each of `probas` (cut at its own threshold) on the same resamples, drawn a
    block at a time. With `groups` (a code per row, -1: not scored), whole groups are resampled.

    The whole count matrix is n_bootstrap x n_rows (1,000 x 200,000 test rows: 1.6 GB, and the
    weighted metrics make float copies of it). Blocks of about 16 M cells are drawn in turn from
    one generator, which gives the same resamples as drawing them all at once. With more than
    `max_rows` rows, each resample is `max_rows` rows drawn with replacement instead (see
    `subsample_scores`); `rescaled_interval` turns their spread into the n-row one.
    """
    import numpy as np

    n_rows = len(y_true)
    if groups is not None:
        return _group_scores(metric, y_true, probas, n_bootstrap, seed, thresholds, groups)
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


def _group_scores(
    metric: str,
    y_true: np.ndarray,
    probas: Sequence[np.ndarray],
    n_bootstrap: int,
    seed: int,
    thresholds: Sequence[float],
    groups: np.ndarray,
) -> list[np.ndarray]:
    """The bootstrap over groups (a forecast's series x origin): each resample draws the groups with
    replacement and weighs every row by how often its group was drawn; rows of group -1 weigh nothing.
    The errors of one window are correlated (one bad origin spoils all its steps): resampling rows
    would make the interval too narrow."""
    import numpy as np

    codes = np.asarray(groups, dtype=int)
    units = int(codes.max()) + 1 if len(codes) and codes.max() >= 0 else 0
    if units == 0:
        return [np.full(n_bootstrap, np.nan) for _ in probas]
    rng = np.random.default_rng(seed)
    drawn = rng.multinomial(units, np.full(units, 1.0 / units), size=n_bootstrap)
    counts = np.where(codes >= 0, drawn[:, np.clip(codes, 0, None)], 0)
    return [
        bootstrap_scores(metric, y_true, proba, counts, threshold)
        for proba, threshold in zip(probas, thresholds, strict=True)
    ]


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
    groups: np.ndarray | None = None,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of each metric of one model on one test set (m-out-of-n above
    `max_rows` rows, see `bootstrap_blocks`)."""
    import numpy as np

    y = _truth(y_true)
    p = np.asarray(proba, dtype=float)
    resample_rows = min(len(y), max_rows or len(y))
    intervals = {}
    for metric in metrics:
        (values,) = bootstrap_blocks(metric, y, [p], n_bootstrap, seed, [threshold], max_rows, groups)
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
    groups: np.ndarray | None = None,
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
    new, old = bootstrap_blocks(
        metric, y, [p_new, p_old], n_bootstrap, seed, [threshold, old_threshold], max_rows, groups
    )
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
