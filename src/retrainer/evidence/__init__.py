"""The statistics behind a promotion: paired bootstrap, per-slice metrics and group fairness.

Pure functions of labels, scores and group labels (numpy arrays), so they are tested on small
inputs whose answers are known by hand. The stages (compare, fairness) and the report call them.
One module per concern: `bootstrap` (resampling and intervals) over `scorers` (every resample's
metric at once), `slices`, `fairness`.
"""

from retrainer.evidence.bootstrap import (
    BOOTSTRAP_BLOCK_CELLS,
    SUBSAMPLE_BLOCK_CELLS,
    BootstrapResult,
    bootstrap_blocks,
    metric_intervals,
    paired_bootstrap,
    resample_counts,
    rescaled_interval,
    subsample_scores,
)
from retrainer.evidence.fairness import (
    bound_failures,
    class_fairness_summary,
    class_group_rates,
    fairness_failures,
    fairness_summary,
    group_rates,
    residual_fairness_summary,
    residual_group_errors,
)
from retrainer.evidence.scorers import (
    bootstrap_scores,
    weighted_average_precision,
    weighted_roc_auc,
    weighted_roc_auc_ovr,
)
from retrainer.evidence.slices import group_labels, slice_metrics, slice_regressions

__all__ = [
    "BOOTSTRAP_BLOCK_CELLS",
    "SUBSAMPLE_BLOCK_CELLS",
    "BootstrapResult",
    "bootstrap_blocks",
    "bootstrap_scores",
    "bound_failures",
    "class_fairness_summary",
    "class_group_rates",
    "fairness_failures",
    "fairness_summary",
    "group_labels",
    "group_rates",
    "metric_intervals",
    "paired_bootstrap",
    "resample_counts",
    "rescaled_interval",
    "residual_fairness_summary",
    "residual_group_errors",
    "slice_metrics",
    "slice_regressions",
    "subsample_scores",
    "weighted_average_precision",
    "weighted_roc_auc",
    "weighted_roc_auc_ovr",
]
