"""Drift statistics, and the reference profile they compare against. Pure functions: no I/O.

A *reference profile* summarises the data a model was trained on, small enough to store with the
model (`reference_profile.json` on its MLflow run): per numeric column its decile bin edges with the
share of rows in each bin and 1,001 sample quantiles; per categorical column the share of each
category; per column the share of nulls; and the same numeric summary for the model's scores.

A new batch is compared column by column:

- numeric: KS (`scipy.stats.ks_2samp`) and Wasserstein (`scipy.stats.wasserstein_distance`) against
  the reference quantiles, PSI and Jensen-Shannon over the reference's decile bins;
- categorical: PSI and Jensen-Shannon over the reference's categories (unseen ones share one bin);
- text (`features.text`, or inferred): vocabulary, the share of the batch's words that the
  champion's training text never had (`unseen`), less the share expected of a fresh sample of the
  same text: Good-Turing's estimate (the share of training words seen once) plus the share of words
  beyond the `TEXT_VOCABULARY` commonest that the profile keeps; PSI / Jensen-Shannon over the
  `TEXT_TOP_WORDS` commonest words (the rest one bin); length, KS on the number of words per value.
  On the course titles of the example, half the titles against the other half: unseen 0 (18 % new
  words, 22 % expected), JS 0.035; titles of other departments: unseen 0.19, JS 0.28.

Nulls are a bin of their own, so a null burst shows as drift too. A column is *drifted* when any
configured threshold is crossed (see `Thresholds`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

EPSILON = 1e-4  # floor for empty bins: PSI's log would be infinite
N_BINS = 10
N_QUANTILES = 1001
MAX_CATEGORIES = 100
TEXT_VOCABULARY = 5000  # words a text column's profile keeps (the commonest)
TEXT_TOP_WORDS = 20  # words whose shares are compared (PSI, Jensen-Shannon): more, and sampling noise dominates
NULL_BIN = "<null>"
OTHER_BIN = "<other>"


@dataclass(frozen=True)
class Thresholds:
    """When a column counts as drifted: any one rule crossed (None switches a rule off).

    KS flags only a shift that is both significant (`ks_pvalue`) and material (`ks`): on tens of
    thousands of rows a negligible shift is significant.
    """

    psi: float | None = 0.2
    js: float | None = 0.1
    ks: float | None = 0.1
    ks_pvalue: float | None = 0.01
    wasserstein: float | None = None
    unseen: float | None = 0.1  # text: share of new words above the reference's own


@dataclass(frozen=True)
class ColumnDrift:
    name: str
    kind: str  # "numeric" | "categorical" | "text"
    psi: float
    js: float
    ks: float | None = None
    ks_pvalue: float | None = None
    wasserstein: float | None = None
    unseen: float | None = None
    drifted: bool = False
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = list(self.reasons)
        return data


# ------------------------------------------------------------------------------------ statistics
def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two distributions over the same bins (shares, not counts)."""
    import numpy as np

    ref = np.clip(np.asarray(reference, dtype=float), EPSILON, None)
    cur = np.clip(np.asarray(current, dtype=float), EPSILON, None)
    ref, cur = ref / ref.sum(), cur / cur.sum()
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def jensen_shannon(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon *distance* (base 2, so 0..1) of two distributions over the same bins."""
    import numpy as np
    from scipy.spatial.distance import jensenshannon

    value = float(jensenshannon(np.asarray(reference, dtype=float), np.asarray(current, dtype=float), base=2))
    return 0.0 if math.isnan(value) else value


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value."""
    from scipy.stats import ks_2samp

    result = ks_2samp(reference, current)
    return float(result.statistic), float(result.pvalue)


def wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(reference, current))


def bin_shares(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Share of values in each bin (-inf, e1], (e1, e2], ..., (e_k, inf) of the inner `edges`."""
    import numpy as np

    counts = np.bincount(np.searchsorted(np.asarray(edges, dtype=float), values, side="left"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


# ------------------------------------------------------------------------------------ profiles
def is_numeric(series: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype))


def epoch_seconds(series: pd.Series) -> pd.Series:
    """Datetimes (any resolution, naive or aware, with NaT) as float seconds since 1970 (NaN for NaT)."""
    import pandas as pd

    stamps = pd.to_datetime(series, errors="coerce", utc=True)
    return (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()


def profile_column(series: pd.Series) -> dict[str, Any]:
    """The reference summary of one column (see the module docstring)."""
    import numpy as np
    import pandas as pd

    nulls = float(series.isna().mean()) if len(series) else 0.0
    present = series.dropna()
    if is_numeric(series):
        values = present.to_numpy(dtype=float)
        if not len(values):
            return {"kind": "numeric", "null_fraction": nulls, "edges": [], "shares": [1.0], "quantiles": []}
        edges = sorted(set(np.quantile(values, np.linspace(0, 1, N_BINS + 1)[1:-1]).round(12).tolist()))
        quantiles = np.quantile(values, np.linspace(0, 1, min(N_QUANTILES, len(values))))
        return {
            "kind": "numeric",
            "null_fraction": nulls,
            "edges": edges,
            "shares": bin_shares(values, edges).round(6).tolist(),
            "quantiles": quantiles.round(10).tolist(),
        }
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return profile_column(epoch_seconds(series))
    shares = present.astype(str).value_counts(normalize=True)
    kept = shares.iloc[:MAX_CATEGORIES]
    categories = {str(k): round(float(v), 6) for k, v in kept.items()}
    if len(shares) > MAX_CATEGORIES:
        categories[OTHER_BIN] = round(float(shares.iloc[MAX_CATEGORIES:].sum()), 6)
    return {"kind": "categorical", "null_fraction": nulls, "categories": categories}


def profile_text(series: pd.Series) -> dict[str, Any]:
    """The reference summary of a text column: null share, word-count quantiles, the commonest words' shares."""
    from collections import Counter

    import numpy as np

    from retrainer.text import tokens

    nulls = float(series.isna().mean()) if len(series) else 0.0
    words = [tokens(v) for v in series.dropna()]
    counts: Counter[str] = Counter(w for value in words for w in value)
    total = max(sum(counts.values()), 1)
    kept = counts.most_common(TEXT_VOCABULARY)
    once = sum(1 for c in counts.values() if c == 1)  # Good-Turing: a fresh word's chance is n1 / N
    lengths = np.asarray([len(value) for value in words], dtype=float)
    quantiles = np.quantile(lengths, np.linspace(0, 1, min(N_QUANTILES, len(lengths)))) if len(lengths) else []
    return {
        "kind": "text",
        "null_fraction": nulls,
        "vocabulary": {w: round(c / total, 8) for w, c in kept},
        "unseen_share": round(once / total + 1 - sum(c for _, c in kept) / total, 6) if counts else 0.0,
        "length_quantiles": np.round(quantiles, 4).tolist(),
    }


def text_drift(reference: dict[str, Any], current: pd.Series) -> dict[str, float]:
    """psi and js over the commonest words, `unseen` (new words' share, above the reference's own) and KS
    of the word counts: the statistics `drift.compare_column` decides on."""
    from collections import Counter

    import numpy as np

    from retrainer.text import tokens

    vocabulary: dict[str, float] = reference["vocabulary"]
    top = list(vocabulary)[:TEXT_TOP_WORDS]
    words = [tokens(v) for v in current.dropna()]
    counts: Counter[str] = Counter(w for value in words for w in value)
    total = sum(counts.values())
    ref_bins = np.array([vocabulary[w] for w in top] + [max(1 - sum(vocabulary[w] for w in top), 0.0)])
    cur_bins = np.array([counts.get(w, 0) for w in top] + [total - sum(counts.get(w, 0) for w in top)], dtype=float)
    cur_bins = cur_bins / max(total, 1)
    unseen = sum(c for w, c in counts.items() if w not in vocabulary) / total if total else 0.0
    stats = {
        "psi": psi(ref_bins, cur_bins) if total else 0.0,
        "js": jensen_shannon(ref_bins, cur_bins) if total else 0.0,
        "unseen": max(unseen - float(reference.get("unseen_share", 0.0)), 0.0),
    }
    quantiles = np.asarray(reference["length_quantiles"], dtype=float)
    if len(quantiles) and words:
        stats["ks"], stats["ks_pvalue"] = ks(quantiles, np.asarray([len(w) for w in words], dtype=float))
    return stats


def score_series(scores: np.ndarray) -> pd.Series:
    """A model's predictions as a column to profile: numbers (scores, values) or text (decided classes)."""
    import numpy as np
    import pandas as pd

    values = np.asarray(scores)
    return pd.Series(values, dtype="string" if values.dtype.kind in "OUS" else "float64")


def build_profile(
    frame: pd.DataFrame, scores: np.ndarray | None = None, text: list[str] | None = None
) -> dict[str, Any]:
    """The reference profile of a training frame (and the model's scores on it); `text` names the
    columns the model reads as free text."""
    return {
        "rows": len(frame),
        "columns": {
            str(c): profile_text(frame[c]) if c in (text or []) else profile_column(frame[c]) for c in frame.columns
        },
        "score": None if scores is None else profile_column(score_series(scores)),
    }


def compare_column(name: str, reference: dict[str, Any], current: pd.Series, thresholds: Thresholds) -> ColumnDrift:
    """The drift of one column of a new batch against its reference summary."""
    import numpy as np
    import pandas as pd

    nulls = float(current.isna().mean()) if len(current) else 0.0
    present = current.dropna()
    if reference["kind"] == "numeric":
        if pd.api.types.is_datetime64_any_dtype(current.dtype):
            present = epoch_seconds(present)
        values = pd.to_numeric(present, errors="coerce").dropna().to_numpy(dtype=float)
        ref_bins = _with_nulls(np.asarray(reference["shares"], dtype=float), reference["null_fraction"])
        cur_bins = _with_nulls(bin_shares(values, reference["edges"]), nulls)
        stats: dict[str, Any] = {"psi": psi(ref_bins, cur_bins), "js": jensen_shannon(ref_bins, cur_bins)}
        quantiles = np.asarray(reference["quantiles"], dtype=float)
        if len(quantiles) and len(values):
            stats["ks"], stats["ks_pvalue"] = ks(quantiles, values)
            stats["wasserstein"] = wasserstein(quantiles, values)
    elif reference["kind"] == "text":
        stats = text_drift(reference, current)
    else:
        known = reference["categories"]
        text = present.astype(str)
        mapped = text.where(text.isin(list(known)), OTHER_BIN)
        shares = mapped.value_counts(normalize=True) * (1 - nulls)
        labels = sorted(set(known) | {OTHER_BIN})
        ref_bins = np.array([known.get(k, 0.0) for k in labels] + [reference["null_fraction"]])
        ref_bins[:-1] *= 1 - reference["null_fraction"]
        cur_bins = np.array([float(shares.get(k, 0.0)) for k in labels] + [nulls])
        stats = {"psi": psi(ref_bins, cur_bins), "js": jensen_shannon(ref_bins, cur_bins)}
    reasons = drift_reasons(stats, thresholds)
    # p-values keep 4 significant digits: 7.5e-11 must not print as 0
    rounded = {
        k: None if v is None else float(f"{v:.4g}") if k == "ks_pvalue" else round(float(v), 6)
        for k, v in stats.items()
    }
    return ColumnDrift(name, reference["kind"], drifted=bool(reasons), reasons=tuple(reasons), **rounded)  # type: ignore[arg-type]


def _with_nulls(shares: np.ndarray, null_fraction: float) -> np.ndarray:
    import numpy as np

    return np.append(shares * (1 - null_fraction), null_fraction)


def drift_reasons(stats: dict[str, float], thresholds: Thresholds) -> list[str]:
    """Which thresholds the statistics cross, in words; empty when the column did not drift."""
    reasons = []
    for name in ("psi", "js", "wasserstein", "unseen"):
        limit, value = getattr(thresholds, name), stats.get(name)
        if limit is not None and value is not None and value > limit:
            reasons.append(f"{name} {value:.3f} > {limit}")
    statistic, pvalue = stats.get("ks"), stats.get("ks_pvalue")
    if statistic is not None and pvalue is not None and thresholds.ks_pvalue is not None:
        material = thresholds.ks is None or statistic > thresholds.ks
        if pvalue < thresholds.ks_pvalue and material:
            reasons.append(f"ks {statistic:.3f} (p={pvalue:.2g})")
    return reasons


def kind_changes(profile: dict[str, Any], frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Columns whose kind changed against the reference: a numeric column that arrives as text (a few
    "unknown" among the numbers make the whole column text, and features would one-hot it without a
    word), or a categorical one that arrives as numbers. Each with how many values and a few examples."""
    import pandas as pd

    changes = []
    for name, reference in profile["columns"].items():
        if name not in frame.columns:
            continue
        series = frame[name]
        numeric_now = is_numeric(series) or pd.api.types.is_datetime64_any_dtype(series.dtype)
        if reference["kind"] == "numeric" and not numeric_now:
            present = series.dropna()
            junk = present[pd.to_numeric(present, errors="coerce").isna()]
            if junk.empty:  # numbers held as text or objects: the same values
                continue
            examples = [str(v) for v in junk.astype(str).unique()[:3]]
            changes.append({"name": name, "was": "numeric", "now": "text", "rows": len(junk), "examples": examples})
        elif reference["kind"] == "categorical" and numeric_now and len(series.dropna()):
            examples = [str(v) for v in series.dropna().unique()[:3]]
            changes.append(
                {
                    "name": name,
                    "was": "categorical",
                    "now": "numeric",
                    "rows": int(series.notna().sum()),
                    "examples": examples,
                }
            )
    return changes


# what a real change against the champion's data is (a contract learnt from it, as TFDV's schema)
NULL_JUMP = 0.10  # the null rate rose by at least this, and at least doubled
NEW_CATEGORY_SHARE = 0.5  # most rows hold a value the champion never saw


def contract_changes(
    profile: dict[str, Any], frame: pd.DataFrame, kinds: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The new batch against the contract the champion's training data implies: columns whose type
    changed, whose null rate jumped, whose median lies a whole span beyond the range the champion saw
    (times excepted), or whose values are mostly categories it never saw. Drift is a shift inside these
    bounds; these are a broken feed (a unit change, a renamed code, a join that lost its rows). Each
    names the column and both figures. `kinds`: `kind_changes(profile, frame)` where the caller has it."""
    import pandas as pd

    changes = [
        {"column": c["name"], "rule": "type", "was": c["was"], "now": c["now"], "message": describe_kind_change(c)}
        for c in (kind_changes(profile, frame) if kinds is None else kinds)
    ]
    retyped = {change["column"] for change in changes}
    for name, reference in profile["columns"].items():
        if name not in frame.columns or name in retyped or not len(frame):
            continue
        series = frame[name]
        was, now = float(reference["null_fraction"]), float(series.isna().mean())
        if now - was >= NULL_JUMP and now >= 2 * was:
            changes.append(
                {
                    "column": name,
                    "rule": "null_rate",
                    "was": round(was, 4),
                    "now": round(now, 4),
                    "message": f"{name}: null rate {was:.1%} in the champion's data, {now:.1%} now",
                }
            )
        present = series.dropna()
        if not len(present):
            continue
        # times move on by nature, and so do years and counters: a range is broken when the median
        # lies a whole span beyond it (dollars become cents), not just past its edge
        if reference["kind"] == "numeric" and reference["quantiles"]:
            if pd.api.types.is_datetime64_any_dtype(present.dtype):
                continue
            median = float(pd.to_numeric(present, errors="coerce").median())
            low, high = float(reference["quantiles"][0]), float(reference["quantiles"][-1])
            span = high - low  # zero: constant in the champion's data, a column it could not learn from
            if span > 0 and median == median and not low - span <= median <= high + span:
                changes.append(
                    {
                        "column": name,
                        "rule": "range",
                        "was": [low, high],
                        "now": median,
                        "message": f"{name}: median {median:,.4g} outside the champion's range "
                        f"{low:,.4g} to {high:,.4g}",
                    }
                )
        elif reference["kind"] == "categorical" and OTHER_BIN not in reference["categories"]:
            text = present.astype(str)
            unseen = text[~text.isin(list(reference["categories"]))]
            share = len(unseen) / len(text)
            if share > NEW_CATEGORY_SHARE:
                shown = ", ".join(repr(v) for v in unseen.value_counts().index[:3])
                changes.append(
                    {
                        "column": name,
                        "rule": "new_categories",
                        "was": 0.0,
                        "now": round(share, 4),
                        "message": f"{name}: {share:.0%} of rows hold values the champion never saw (e.g. {shown})",
                    }
                )
    return changes


def describe_kind_change(change: dict[str, Any]) -> str:
    """One change in words: `tenure was numeric, now text: 352 values are not numbers (e.g. 'unknown')`."""
    shown = ", ".join(repr(e) for e in change["examples"])
    if change["now"] == "text":
        return f"{change['name']} was numeric, now text: {change['rows']:,} values are not numbers (e.g. {shown})"
    return f"{change['name']} was categorical, now numbers (e.g. {shown})"


def compare_to_profile(
    profile: dict[str, Any],
    frame: pd.DataFrame,
    thresholds: Thresholds,
    columns: list[str] | None = None,
    scores: np.ndarray | None = None,
) -> tuple[list[ColumnDrift], ColumnDrift | None]:
    """Drift of every profiled column present in `frame` (or only `columns`), and of the scores."""

    names = [c for c in (columns or list(profile["columns"])) if c in profile["columns"] and c in frame.columns]
    features = [compare_column(c, profile["columns"][c], frame[c], thresholds) for c in names]
    score = None
    if scores is not None and profile.get("score"):
        score = compare_column("score", profile["score"], score_series(scores), thresholds)
    return features, score
