"""The `anomaly:` section: what `task: anomaly` needs that a table does not (the expected alert rate, its checks)."""

from __future__ import annotations

from pydantic import Field

from retrainer.spec.common import _Section

# the target column a spec without `target` reads: no label is known, every row is "unknown" (-1)
UNLABELLED = "_unlabelled_"


class AnomalySpec(_Section):
    """`task: anomaly`: a detector fitted without labels, flagging the most unusual rows.

    The cut-off (a score) is fitted on the training rows so that `alert_rate` of them are flagged, and
    saved with the model; serving answers the score and whether it reaches the cut-off. Without labels
    the gates are checks, not proof: the new batch's alert rate near the expected one, and alerts that
    stay the same when the detector is refitted with other seeds.
    """

    alert_rate: float = Field(
        0.05,
        gt=0,
        le=0.5,
        description="Expected share of anomalies (scikit-learn's contamination): the cut-off flags this share "
        "of the training rows.",
    )
    alert_rate_tolerance: float = Field(
        0.5,
        gt=0,
        description="Gate: the test set's alert rate may differ from alert_rate by this share of it "
        "(0.5: 2.5 % to 7.5 % for 5 %).",
    )
    stability_seeds: int = Field(
        2,
        ge=0,
        le=10,
        description="Copies of the detector refitted with other seeds on 80 % samples of the training rows; "
        "seed_agreement is the share of the model's alerts they also raise (0: no copies).",
    )
    min_seed_agreement: float = Field(
        0.5, ge=0, le=1, description="Gate: the least seed_agreement a model may have (0: no gate)."
    )
    min_alert_overlap: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Gate at the comparison: the least share of alerts (Jaccard) a challenger must share with the "
        "champion on the same test rows to replace it (None: the overlap is reported only).",
    )
