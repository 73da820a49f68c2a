"""Regression: a numeric target, predicted as values in its own units.

Splits and folds are stratified on deciles of the target (a random split that keeps the spread of
prices in both parts). `target.transform: log | log1p` is fitted inside the model
(`TransformedTargetRegressor`), so the model learns on the log scale and answers in the original
units: serving, metrics and the champion's comparison never see the transformed values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from retrainer.tasks.base import Task, invalid_target

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from retrainer.spec import FairnessSpec, Spec

STRATA = 10  # quantile bins of the target a split keeps in proportion


class RegressionTask(Task):
    name: ClassVar[str] = "regression"
    estimator_type: ClassVar[str] = "regressor"
    default_metric: ClassVar[str] = "rmse"
    sklearn_scoring: ClassVar[str] = "neg_root_mean_squared_error"
    fairness_bounds: ClassVar[Mapping[str, tuple[str, str]]] = {
        "mae_ratio": ("max", "max_mae_ratio"),
        "residual_gap": ("max", "max_residual_gap"),
    }

    def __init__(self, transform: str = "none") -> None:
        self.transform = transform

    @classmethod
    def from_target(cls, values: pd.Series, spec: Spec) -> RegressionTask:
        import numpy as np
        import pandas as pd

        column = spec.target.column
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            shown = ", ".join(repr(v) for v in values.dropna().unique()[:3])
            raise invalid_target(
                f"target '{column}' is not numeric ({values.dtype}: {shown}); regression predicts numbers",
                "target: not numeric",
                hint="cast it in the source query, or use task: multiclass for labels",
            )
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        missing, infinite = int(np.isnan(numbers).sum()), int(np.isinf(numbers).sum())
        if missing or infinite:
            raise invalid_target(
                f"target '{column}' has {missing} missing and {infinite} infinite values; "
                "regression needs a number per row",
                "target: NaN or inf",
                hint="filter those rows in the source query",
            )
        transform = spec.target.transform
        if transform == "log" and (numbers <= 0).any():
            raise invalid_target(
                f"target '{column}': target.transform log needs values > 0 (minimum {numbers.min():g})",
                "target: log of a value <= 0",
                hint="use target.transform: log1p for values >= 0",
            )
        if transform == "log1p" and (numbers <= -1).any():
            raise invalid_target(
                f"target '{column}': target.transform log1p needs values > -1 (minimum {numbers.min():g})",
                "target: log1p of a value <= -1",
            )
        return cls(transform)

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> RegressionTask:
        return cls(str(info.get("transform", "none")))

    def info(self) -> dict[str, Any]:
        return {"task": self.name, "transform": self.transform}

    def encode(self, values: pd.Series) -> np.ndarray:
        import numpy as np

        return np.asarray(values, dtype=float)

    def strata(self, y: np.ndarray) -> np.ndarray | None:
        import numpy as np

        if len(y) < 2 * STRATA:
            return None
        edges = np.unique(np.quantile(y, np.linspace(0, 1, STRATA + 1)[1:-1]))
        return np.searchsorted(edges, y, side="right")

    def check_split(self, parts: Mapping[str, np.ndarray]) -> None:
        import numpy as np

        for name in ("train", "test"):
            if len(parts[name]) < 2 or float(np.std(parts[name])) == 0.0:
                raise invalid_target(
                    f"the {name} split's target is constant ({len(parts[name])} rows): nothing to learn or test",
                    f"split: {name} target constant",
                )

    def one_vs_rest(self, y: np.ndarray) -> list[np.ndarray]:
        import numpy as np

        return [(y > np.median(y)).astype(int)]

    def describe(self, y: np.ndarray) -> dict[str, Any]:
        import numpy as np

        if not len(y):
            return {"mean": None}
        return {"mean": round(float(np.mean(y)), 6), "std": round(float(np.std(y)), 6)}

    def fairness(
        self, groups: pd.Series, y: np.ndarray, output: np.ndarray, threshold: float, rules: FairnessSpec
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[str], str]:
        """MAE per group (highest over lowest) and the gap between the groups' mean residuals."""
        from retrainer.evidence import bound_failures, residual_fairness_summary, residual_group_errors

        errors = residual_group_errors(groups, y, output, rules.min_group_size)
        summary = residual_fairness_summary(errors)
        return errors, summary, bound_failures(summary, self.fairness_limits(rules.model_dump())), "mae_ratio"

    def predict(self, model: Any, frame: pd.DataFrame) -> np.ndarray:
        import numpy as np

        from retrainer.models.scoring import batched

        return batched(lambda rows: np.asarray(model.predict(rows), dtype=float), frame)

    def wrap(self, estimator: Any, spec: Spec, calibrate: bool) -> Any:
        if self.transform == "none":
            return estimator
        import numpy as np
        from sklearn.compose import TransformedTargetRegressor

        func, inverse = (np.log, np.exp) if self.transform == "log" else (np.log1p, np.expm1)
        return TransformedTargetRegressor(regressor=estimator, func=func, inverse_func=inverse, check_inverse=False)

    def response(self, output: np.ndarray, threshold: float) -> list[dict[str, Any]]:
        return [{"prediction": float(value)} for value in output]

    def output_summary(self, output: np.ndarray, threshold: float) -> dict[str, Any]:
        import numpy as np

        values = np.asarray(output, dtype=float)
        if not len(values):
            return {"mean": None}
        low, median, high = np.quantile(values, [0.1, 0.5, 0.9])
        return {"mean": float(values.mean()), "p10": float(low), "median": float(median), "p90": float(high)}

    @classmethod
    def shown_metrics(cls) -> tuple[str, ...]:
        return ("rmse", "mae", "r2", "mape", "median_ae")
