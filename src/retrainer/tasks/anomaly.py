"""Anomaly detection: a detector fitted without labels flags the most unusual rows.

Never inferred: only `task: anomaly` selects it. What differs from a table, each a method here with a
default in `Task`:
- the target is optional. Where the table has a column of known anomalies (`target`, positive label
  inferred or given), it is encoded 1 / 0 and read only to score (`fit` never sees it): the ranking
  metric is `average_precision`, with `precision_at_k` and `recall_at_alert_rate` at k = the expected
  alert rate times the rows. Without `target`, every row's label is -1 (`with_target`), the labelled
  metrics are undefined and the run ranks and decides on what can be checked: `seed_agreement` (do
  detectors refitted with other seeds raise the same alerts?). The gates in both cases
  (`gate_failures`): the test set's alert rate at the stored cut-off within `anomaly.alert_rate_tolerance`
  of the expected rate, and `seed_agreement` at least `anomaly.min_seed_agreement`. These are checks,
  not proof that the alerts are anomalies.
- the output (`AnomalyDetector.predict`, `metrics.ANOMALY_OUTPUT`): the score (higher: more anomalous),
  the cut-off fitted on the training rows at the expected alert rate, the rate, the seed agreement;
  serving answers the score and the flag at the stored cut-off (`response`).
- the comparison with the champion (`paired_checks`): besides the paired bootstrap of the metric, the
  overlap of the challenger's alerts with the champion's on the same rows.
- no SHAP or permutation importance (`explainable`): the report shows the top alerts with their most
  unusual features (robust z-scores) instead (`report/anomaly_plots.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from retrainer.metrics import ANOMALY_LABELLED, metrics_for
from retrainer.spec.anomaly import UNLABELLED, AnomalySpec
from retrainer.target import encode_target, positive_label
from retrainer.tasks.base import Task, invalid_target, plain_value

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from retrainer.spec import FairnessSpec, Spec

UNKNOWN = -1  # the label of a row nothing is known about


class AnomalyTask(Task):
    name: ClassVar[str] = "anomaly"
    estimator_type: ClassVar[str] = "anomaly_detector"
    default_metric: ClassVar[str] = "average_precision"
    unlabelled_metric: ClassVar[str] = "seed_agreement"  # the ranking metric without known anomalies
    has_positive_label: ClassVar[bool] = True
    sklearn_scoring: ClassVar[str] = "average_precision"
    explainable: ClassVar[bool] = False

    def __init__(self, positive: Any = None, labelled: bool = True) -> None:
        self.positive = positive
        self.labelled = labelled

    # ------------------------------------------------------------------ identity
    @classmethod
    def from_target(cls, values: pd.Series, spec: Spec) -> AnomalyTask:
        if spec.target.column == UNLABELLED:
            return cls(None, labelled=False)
        labels = values.dropna()
        positive = positive_label(labels, spec.target)
        return cls(plain_value(positive))

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> AnomalyTask:
        return cls(info.get("positive"), bool(info.get("labelled", True)))

    def info(self) -> dict[str, Any]:
        return {"task": self.name, "positive": self.positive, "labelled": self.labelled}

    # ------------------------------------------------------------------ the data
    @classmethod
    def with_target(cls, frame: pd.DataFrame, spec: Spec) -> pd.DataFrame:
        """Without known anomalies, every row gets the label -1 (unknown) in the target's place."""
        if spec.target.column != UNLABELLED or UNLABELLED in frame.columns:
            return frame
        return frame.assign(**{UNLABELLED: UNKNOWN})

    def encode(self, values: pd.Series) -> np.ndarray:
        import numpy as np

        if not self.labelled:
            return np.full(len(values), UNKNOWN, dtype="int64")
        return encode_target(values, self.positive)

    def strata(self, y: np.ndarray) -> np.ndarray | None:
        return y if self.labelled else None

    def check_split(self, parts: Mapping[str, np.ndarray]) -> None:
        import numpy as np

        if not self.labelled:
            return
        for name in ("train", "test"):
            known = int(np.sum(parts[name] == 1))
            if known < 2:
                raise invalid_target(
                    f"the {name} split has {known} known anomalies ({len(parts[name])} rows): too few to score "
                    "a detector",
                    f"split: {name} has {known} known anomalies",
                    hint="collect more labelled anomalies, change split.test_size, or omit target to run unlabelled",
                )

    def one_vs_rest(self, y: np.ndarray) -> list[np.ndarray]:
        return [y] if self.labelled else []

    def leakage_columns(self, columns: list[str], spec: Spec) -> list[str]:
        """With known anomalies, every input (a column that gives the label away flatters the scores)."""
        return columns if spec.target.column != UNLABELLED else []

    def describe(self, y: np.ndarray) -> dict[str, Any]:
        if not self.labelled:
            return {"known_anomalies": None}
        return {"known_anomalies": int((y == 1).sum()), "anomaly_rate": round(float(y.mean()), 4) if len(y) else None}

    # ------------------------------------------------------------------ the model
    def wrap(self, estimator: Any, spec: Spec, calibrate: bool) -> Any:
        """The spec's expected alert rate and seed copies on the candidate's detector."""
        rules = spec.anomaly or AnomalySpec()
        return estimator.set_params(alert_rate=rules.alert_rate, stability_seeds=rules.stability_seeds)

    def predict(self, model: Any, frame: pd.DataFrame) -> np.ndarray:
        """`metrics.ANOMALY_OUTPUT` per row (score, cut-off, expected rate, seed agreement)."""
        import numpy as np

        from retrainer.models.scoring import batched

        return np.asarray(batched(lambda rows: model.predict(rows), frame), dtype=float)

    def response(self, output: np.ndarray, threshold: float) -> list[dict[str, Any]]:
        """The score and the flag at the cut-off stored with the model (`threshold` is not read); `prediction`
        is the flag as 0/1, what the prediction log keeps."""
        answers = []
        for row in output:
            flagged = bool(row[0] >= row[1])
            answers.append(
                {
                    "prediction": int(flagged),
                    "anomaly": flagged,
                    "anomaly_score": float(row[0]),
                    "cutoff": float(row[1]),
                }
            )
        return answers

    def logged_metrics(
        self, y: np.ndarray, predictions: pd.Series, probabilities: pd.Series, threshold: float
    ) -> dict[str, float]:
        """The prediction log keeps the flags, not the scores: the online alert rate is what it can give."""
        import numpy as np

        flags = np.asarray(predictions, dtype=float) > 0
        return {"alert_rate": float(flags.mean())} if len(flags) else {}

    def drift_values(self, output: np.ndarray) -> np.ndarray:
        """The scores: drift compares the champion's scores on the new batch with those on its training rows."""
        return output[:, 0]

    def output_summary(self, output: np.ndarray, threshold: float) -> dict[str, Any]:
        import numpy as np

        scores = output[:, 0]
        return {
            "mean": float(scores.mean()) if len(scores) else None,
            "alert_rate": float(np.mean(scores >= output[:, 1])) if len(scores) else None,
        }

    def fairness(
        self, groups: pd.Series, y: np.ndarray, output: np.ndarray, threshold: float, rules: FairnessSpec
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[str], str]:
        """The alert rate per group, and the lowest over the highest (reported; no bound applies)."""
        import numpy as np

        flagged = output[:, 0] >= output[:, 1]
        rates: dict[str, dict[str, Any]] = {}
        for group in groups.dropna().unique():
            rows = (groups == group).to_numpy()
            counted = int(rows.sum()) >= rules.min_group_size
            rates[str(group)] = {"rows": int(rows.sum()), "alert_rate": float(flagged[rows].mean()), "counted": counted}
        shares = [r["alert_rate"] for r in rates.values() if r["counted"]]
        ratio = float(np.min(shares) / np.max(shares)) if len(shares) >= 2 and np.max(shares) > 0 else None
        return rates, {"alert_rate_ratio": ratio}, [], "alert_rate_ratio"

    # ------------------------------------------------------------------ metrics and gates
    @property
    def metrics(self) -> tuple[str, ...]:
        """Without known anomalies, only what needs no label."""
        every = metrics_for(self.name)
        return every if self.labelled else tuple(m for m in every if m not in ANOMALY_LABELLED)

    @classmethod
    def own_spec_problems(cls, spec: Spec) -> list[str]:
        """Without a target, no metric that reads labels can rank, gate or decide."""
        if spec.target.column != UNLABELLED:
            return []
        named = {
            "evaluation.metric": spec.evaluation.metric,
            "promotion.min_improvement.metric": spec.promotion.min_improvement.metric,
            **{f"evaluation.thresholds.{name}": name for name in spec.evaluation.thresholds},
        }
        return [
            f"{key}: {metric} needs known anomalies (a target); without one choose from "
            f"{', '.join(m for m in metrics_for(cls.name) if m not in ANOMALY_LABELLED)}"
            for key, metric in named.items()
            if metric in ANOMALY_LABELLED
        ]

    def ranking_metric(self, spec: Spec) -> str:
        return spec.evaluation.metric or (self.default_metric if self.labelled else self.unlabelled_metric)

    @classmethod
    def shown_metrics(cls) -> tuple[str, ...]:
        return ("average_precision", "precision_at_k", "recall_at_alert_rate", "alert_rate", "seed_agreement")

    def gate_failures(self, metrics: Mapping[str, float], spec: Spec) -> list[str]:
        """What can be checked with or without labels: the alert rate near the expected one, stable alerts."""
        rules = spec.anomaly or AnomalySpec()
        failures = []
        gap, rate = metrics.get("alert_rate_gap"), metrics.get("alert_rate")
        if gap is None or rate is None or not gap <= rules.alert_rate_tolerance:
            low = rules.alert_rate * (1 - rules.alert_rate_tolerance)
            high = rules.alert_rate * (1 + rules.alert_rate_tolerance)
            shown = "not computed" if rate is None else f"{rate:.2%}"
            failures.append(
                f"alert_rate {shown} outside {max(low, 0):.2%} to {high:.2%} (expected {rules.alert_rate:.2%} "
                f"± {rules.alert_rate_tolerance:.0%})"
            )
        agreement = metrics.get("seed_agreement")
        if agreement is not None and agreement < rules.min_seed_agreement:
            failures.append(
                f"seed_agreement {agreement:.4f} < minimum {rules.min_seed_agreement:g}: detectors refitted with "
                "other seeds raise other alerts"
            )
        return failures

    def metrics_note(self, evidence: Mapping[str, Any]) -> str | None:
        """Says plainly what the label-free figures are, and how the alerts overlap with the champion's."""
        checks = evidence.get("checks") or {}
        overlap = ""
        if checks.get("alert_overlap") is not None:
            overlap = (
                f" On the same test rows the challenger raises {checks['alerts']:,} alerts and the champion "
                f"{checks['champion_alerts']:,}; they share {checks['alert_overlap']:.0%} of their alerts (Jaccard), "
                f"and the challenger keeps {checks['champion_alerts_kept']:.0%} of the champion's."
            )
        if self.labelled:
            return (
                "Known anomalies score the detectors (never used to fit them). alert_rate and seed_agreement are "
                "checks, not proof: a rate near the expected one and alerts that survive other seeds say the "
                "detector behaves as fitted, not that its alerts are anomalies." + overlap
            )
        return (
            "No labels: nothing here proves that an alert is an anomaly. alert_rate (near the expected rate), "
            "seed_agreement (alerts that survive other seeds) and the overlap with the champion's alerts are "
            "checks of behaviour, not of correctness; review the top alerts." + overlap
        )

    def paired_checks(self, output: np.ndarray, champion_output: np.ndarray | None, spec: Spec) -> dict[str, Any]:
        """The overlap of the challenger's alerts with the champion's on the same rows (Jaccard, and the share
        of the champion's alerts the challenger keeps): a check, not proof of either. Below
        `anomaly.min_alert_overlap` it keeps the champion."""
        if champion_output is None or len(champion_output) != len(output):
            return {}
        mine, theirs = output[:, 0] >= output[:, 1], champion_output[:, 0] >= champion_output[:, 1]
        both, either = int((mine & theirs).sum()), int((mine | theirs).sum())
        overlap = round(both / either, 4) if either else None
        least = (spec.anomaly or AnomalySpec()).min_alert_overlap
        failures = []
        if least is not None and overlap is not None and overlap < least:
            failures.append(f"alert overlap with the champion {overlap:.2%} < minimum {least:.0%}")
        return {
            "alerts": int(mine.sum()),
            "champion_alerts": int(theirs.sum()),
            "alert_overlap": overlap,
            "champion_alerts_kept": round(both / int(theirs.sum()), 4) if theirs.any() else None,
            "failures": failures,
        }
