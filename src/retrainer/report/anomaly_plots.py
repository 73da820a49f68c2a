"""An anomaly detector's plots, from its output (`metrics.ANOMALY_OUTPUT` per test row): the distribution
of the scores with the stored cut-off (known anomalies apart where the data has them), and the top alerts
with their most unusual features.

"Unusual" is measured against the test rows themselves: a numeric input's robust z-score, (value - median)
/ (1.4826 x MAD), so a feature counts for how far it is from the batch's typical row in its own spread; a
category's rarity on the same scale (`robust_z`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrainer.report.figures import BAD, CHALLENGER, Scored, annotate_cells, figure, png, short

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

STEMS = ("score_distribution", "top_alerts")
TOP_ALERTS = 12
TOP_FEATURES = 8


def draw(scored: Scored) -> dict[str, bytes]:
    """The plots of a detector's test output, by stem (`STEMS`)."""
    import numpy as np

    output = np.asarray(scored.output, dtype=float)
    plots = {"score_distribution": score_distribution_plot(scored.y, output)}
    if scored.rows is not None and len(output):
        alerts = top_alerts(scored.rows, output[:, 0])
        if alerts is not None:
            plots["top_alerts"] = top_alerts_plot(alerts, scored.y, output)
    return plots


def score_distribution_plot(y: np.ndarray, output: np.ndarray) -> bytes:
    import numpy as np

    scores, cutoff = output[:, 0], float(output[0, 1]) if len(output) else 0.0
    drawn, axes = figure(6.5, 3.6)
    bins = np.histogram_bin_edges(scores, bins=50) if len(scores) else 10
    known = np.asarray(y) == 1
    labelled = known.any() and (np.asarray(y) == 0).any()
    if labelled:
        axes.hist(scores[~known], bins=bins, color=CHALLENGER, alpha=0.7, label="known normal")
        axes.hist(scores[known], bins=bins, color=BAD, alpha=0.8, label="known anomaly")
    else:
        axes.hist(scores, bins=bins, color=CHALLENGER, alpha=0.8, label="rows (no labels)")
    flagged = float(np.mean(scores >= cutoff)) if len(scores) else 0.0
    axes.axvline(cutoff, color="black", linestyle="--", linewidth=1.2, label=f"cut-off ({flagged:.1%} flagged)")
    axes.set_yscale("log")
    axes.set(xlabel="anomaly score (higher: more anomalous)", ylabel="test rows", title="Scores and the cut-off")
    axes.legend(fontsize=8)
    return png(drawn)


def robust_z(rows: pd.DataFrame) -> pd.DataFrame:
    """Each input's unusualness per row: a numeric column's robust z-score against the rows' median and MAD
    (a constant column: 0); a category's rarity as the two-sided normal z of its share of the rows (a value
    one row in twenty holds scores 1.96, one in a thousand 3.29), always positive."""
    import numpy as np
    import pandas as pd
    from scipy.stats import norm

    numeric = rows.select_dtypes(include="number").astype(float)
    median = numeric.median()
    spread = 1.4826 * (numeric - median).abs().median()
    spread = spread.where(spread > 0, numeric.std(ddof=0)).replace(0.0, np.nan)
    scores = ((numeric - median) / spread).fillna(0.0)
    for column in rows.columns.difference(numeric.columns, sort=False):
        values = rows[column].astype(str)
        share = values.map(values.value_counts(normalize=True)).to_numpy(dtype=float)
        scores[column] = norm.isf(share / 2)
    return pd.DataFrame(scores, index=rows.index, columns=list(rows.columns))


def top_alerts(rows: pd.DataFrame, scores: np.ndarray, top: int = TOP_ALERTS) -> pd.DataFrame | None:
    """The `top` highest-scoring rows' robust z-scores, on the features most unusual among them."""
    import numpy as np

    z = robust_z(rows.reset_index(drop=True))
    if z.empty:
        return None
    order = np.argsort(-scores, kind="stable")[:top]
    chosen = z.iloc[order]
    features = chosen.abs().mean().sort_values(ascending=False).index[:TOP_FEATURES]
    return chosen[list(features)]


def top_alerts_plot(alerts: pd.DataFrame, y: np.ndarray, output: np.ndarray) -> bytes:
    import numpy as np

    matrix = alerts.to_numpy(dtype=float)
    drawn, axes = figure(1.0 * matrix.shape[1] + 3.0, 0.42 * matrix.shape[0] + 1.6)
    limit = max(float(np.abs(matrix).max()), 1.0)
    axes.imshow(matrix, cmap="coolwarm", vmin=-limit, vmax=limit, aspect="auto")
    annotate_cells(axes, matrix, "+.1f", 7)
    labels = []
    for rank, row in enumerate(alerts.index, start=1):
        known = {1: " known", 0: ""}.get(int(y[row]), "")
        labels.append(f"#{rank} score {output[row, 0]:.3g}{known}")
    axes.set_yticks(range(len(labels)), labels=labels, fontsize=7)
    axes.set_xticks(range(matrix.shape[1]), labels=[short(str(c), 16) for c in alerts.columns], fontsize=7, rotation=30)
    axes.set_title("Top alerts: their most unusual features\n(robust z-score; a category: its rarity)", fontsize=9)
    return png(drawn)
