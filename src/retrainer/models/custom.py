"""A user's own estimator as a candidate, made from its spec entry so no stage tells it from a built-in.

    models:
      candidates:
        - lightgbm
        - {name: hgb, estimator: "sklearn.ensemble:HistGradientBoostingClassifier",
           search_space: {learning_rate: {low: 0.02, high: 0.3, log: true}}, params: {max_iter: 200}}

`estimator` is `package.module:attribute`, a class or a factory that returns a scikit-learn-compatible
estimator when called with keyword parameters (the fixed `params`, then each trial's values from
`search_space`). What it can train follows from what it has: `predict_proba` makes a classifier
(binary, multiclass), `predict` without it (or scikit-learn's tags saying regressor) a regressor,
`score_samples` on an outlier detector or a density (IsolationForest, KernelDensity: higher for
more normal rows) an anomaly detector, which `models/anomaly.py: AnomalyDetector` wraps with its
cut-off and seed copies like a built-in one (an outlier detector's `predict`, -1 / 1, is no regressor).
It gets the run's seed and threads as `random_state` and `n_jobs` when it has those parameters and
the spec does not fix them. Its first trial is the library's own defaults for the searched parameters
(those inside the ranges). Everything raises `ValueError` with the message the spec error shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from retrainer.installed import providers
from retrainer.models import ANOMALY_DETECTOR, CLASSIFIER, REGRESSOR, Candidate, range_problem
from retrainer.models.imported import build_imported, load_object


def code_version(path: str) -> str:
    """What the model's behaviour depends on beyond the spec: the installed version of the package that
    provides `path` and a hash of its module's source file, so editing or upgrading your estimator
    re-runs tuning and training instead of reusing their cache."""
    import hashlib
    import importlib.util
    from importlib.metadata import version

    module_name = path.partition(":")[0]
    top = module_name.split(".")[0]
    parts = []
    for distribution in providers(top):
        parts.append(f"{distribution}=={version(distribution)}")
    found = importlib.util.find_spec(module_name)
    if found is not None and found.origin and found.origin.endswith(".py"):
        with open(found.origin, "rb") as source:
            parts.append(hashlib.sha256(source.read()).hexdigest()[:16])
    return ";".join(parts)


DETECTOR_TYPES = (None, "outlier_detector", "density_estimator")  # scikit-learn tags that may score rows


def kinds_of(estimator: Any) -> frozenset[str]:
    """The kinds of model `estimator` can be: a classifier needs predict_proba, a regressor predict, an
    anomaly detector score_samples (on an outlier detector, a density or an untagged estimator)."""
    estimator_type = None
    try:
        from sklearn.utils import get_tags

        estimator_type = get_tags(estimator).estimator_type
    except Exception:  # noqa: BLE001  (a duck-typed estimator without scikit-learn's tags)
        estimator_type = None
    has_proba, has_predict = hasattr(estimator, "predict_proba"), hasattr(estimator, "predict")
    scores = hasattr(estimator, "score_samples") and estimator_type in DETECTOR_TYPES
    detector = frozenset({ANOMALY_DETECTOR}) if scores else frozenset()
    if estimator_type == "outlier_detector":  # its predict is -1 / 1: no regressor
        return detector
    if estimator_type == "classifier" or (estimator_type is None and has_proba):
        return (frozenset({CLASSIFIER}) if has_proba and has_predict else frozenset()) | detector
    return (frozenset({REGRESSOR}) if has_predict else frozenset()) | detector


def needs(kind: str) -> str:
    """What an estimator must have to be a `kind` (for the error when it does not)."""
    if kind == ANOMALY_DETECTOR:
        return "score_samples (an outlier detector's or a density's score, higher for more normal rows)"
    return "predict_proba (a classifier's probabilities)" if kind == CLASSIFIER else "predict (a regressor's values)"


@dataclass(frozen=True)
class ImportedBuilder:
    """Builds the estimator at `path` with the fixed `params` and a trial's: a plain value, so it pickles."""

    path: str
    params: tuple[tuple[str, Any], ...] = ()

    def __call__(self, trial: dict[str, Any], seed: int, n_jobs: int, kind: str) -> Any:
        given = {**dict(self.params), **trial}
        if kind == ANOMALY_DETECTOR:  # the detector with its cut-off and seed copies (each built by `build`)
            from retrainer.models.anomaly import AnomalyDetector

            return AnomalyDetector(method="own", params=given, seed=seed, estimator=self.path)
        return build_imported(self.path, given, seed, n_jobs)


def custom_candidate(
    name: str, path: str, search_space: dict[str, dict[str, Any]], params: dict[str, Any]
) -> Candidate:
    """The catalogue entry for a spec's `{name, estimator, search_space, params}`; ValueError when unusable."""
    factory = load_object(path)
    try:
        estimator = factory(**params)
    except Exception as error:  # noqa: BLE001  (whatever the user's constructor raises, said in one line)
        raise ValueError(f"{path}({', '.join(params)}) failed: {type(error).__name__}: {error}") from None
    if not hasattr(estimator, "fit"):
        raise ValueError(f"{path} builds a {type(estimator).__name__}, which has no fit method")
    kinds = kinds_of(estimator)
    if not kinds and hasattr(estimator, "fit_predict") and not hasattr(estimator, "predict"):
        raise ValueError(  # LocalOutlierFactor without novelty=True: it cannot score rows it has not seen
            f"{path} builds a {type(estimator).__name__} without score_samples or predict (it labels only the "
            "rows it is fitted on; LocalOutlierFactor scores new rows with novelty=True)"
        )
    if not kinds and hasattr(estimator, "predict"):  # e.g. SVC without probability=True
        raise ValueError(f"{path} builds a {type(estimator).__name__} classifier without predict_proba")
    if not kinds:
        raise ValueError(f"{path} builds a {type(estimator).__name__} with neither predict_proba nor predict")
    _check_saveable(path, estimator)
    for param, bounds in search_space.items():
        problem = range_problem(param, bounds)
        if problem:
            raise ValueError(f"search_space.{problem}")
    own = estimator.get_params() if hasattr(estimator, "get_params") else {}
    unknown = sorted(set(search_space) - set(own)) if own else []
    if unknown:
        raise ValueError(f"search_space: {path} has no parameter {unknown[0]!r} (it has {', '.join(sorted(own))})")
    module = type(estimator).__module__.split(".")[0]
    distributions = providers(module) or [module]
    space = {p: bounds for p, bounds in search_space.items() if p not in params}  # a fixed param is not searched
    return Candidate(
        name,
        ImportedBuilder(path, tuple(sorted(params.items()))),
        space=space,
        defaults={p: own[p] for p, bounds in space.items() if p in own and _inside(own[p], bounds)},
        kinds=kinds,
        requirements=(distributions[0],),
        estimator=path,
    )


def _check_saveable(path: str, estimator: Any) -> None:
    """The unfitted estimator goes through skops (what MLflow saves models with), or ValueError now,
    before any tuning; what it learns in `fit` is checked after the final fit (`fitting.check_saveable`)."""
    import skops.io

    try:
        data = skops.io.dumps(estimator)
        skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    except Exception as error:  # noqa: BLE001  (skops raises many kinds; each means the same here)
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:200]
        raise ValueError(f"{path} builds a model that cannot be saved ({reason})") from None


def _inside(value: Any, bounds: dict[str, Any]) -> bool:
    if "choices" in bounds:
        return value in bounds["choices"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return bool(bounds["low"] <= value <= bounds["high"])
