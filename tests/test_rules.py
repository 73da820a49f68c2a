"""The pure decision logic: who wins a comparison, which gates fail, which label is positive."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.errors import DataValidationError
from retrainer.metrics import LOWER_IS_BETTER, METRICS, better
from retrainer.spec import TargetSpec
from retrainer.stages.compare import challenger_beats_champion, required_improvement
from retrainer.stages.evaluate import threshold_failures
from retrainer.target import encode_target, positive_label

# ------------------------------------------------------------------------------------ metrics.better


@pytest.mark.parametrize("metric", sorted(set(METRICS) - LOWER_IS_BETTER))
def test_better_for_higher_is_better_metrics(metric: str) -> None:
    assert better(metric, 0.9, 0.8) == pytest.approx(0.1)
    assert better(metric, 0.8, 0.9) == pytest.approx(-0.1)
    assert better(metric, 0.8, 0.8) == 0


@pytest.mark.parametrize("metric", sorted(LOWER_IS_BETTER))
def test_better_for_lower_is_better_metrics(metric: str) -> None:
    assert better(metric, 0.3, 0.5) == pytest.approx(0.2)
    assert better(metric, 0.5, 0.3) == pytest.approx(-0.2)
    assert better(metric, 0.4, 0.4) == 0


def test_lower_is_better_is_exactly_the_losses_and_errors() -> None:
    losses = {"log_loss", "brier", "rmse", "mae", "mape", "median_ae", "mase", "smape", "naive_ratio"}
    losses |= {"alert_rate", "alert_rate_gap"}  # a detector's alerts: a gate on them is a ceiling
    assert frozenset(losses) == LOWER_IS_BETTER  # a forecast's coverage is higher-is-better
    assert set(METRICS) >= LOWER_IS_BETTER


# ------------------------------------------------------------------------------------ required_improvement


@pytest.mark.parametrize(
    ("champion", "absolute", "relative", "expected"),
    [
        (0.8, None, None, 0.0),
        (0.8, 0.02, None, 0.02),
        (0.8, 0.0, None, 0.0),
        (0.8, None, 0.05, 0.04),
        (0.8, None, 0.0, 0.0),
        (-2.0, None, 0.1, 0.2),  # relative to the size of the score, never negative
        (0.0, None, 0.5, 0.0),
        (0.8, 0.5, 0.1, 0.08),  # relative wins when both are given (the spec forbids that anyway)
    ],
)
def test_required_improvement(champion: float, absolute: float | None, relative: float | None, expected: float) -> None:
    assert required_improvement(champion, absolute, relative) == pytest.approx(expected)


# ------------------------------------------------------------------------------------ challenger_beats_champion


def test_higher_is_better_challenger_wins_without_margin() -> None:
    wins, reason = challenger_beats_champion("roc_auc", 0.85, 0.80)

    assert wins is True
    assert "0.8500" in reason
    assert "0.8000" in reason
    assert "+0.0500" in reason
    assert "beats the required improvement" in reason


def test_higher_is_better_worse_challenger_loses() -> None:
    wins, reason = challenger_beats_champion("roc_auc", 0.78, 0.80)

    assert wins is False
    assert "roc_auc 0.7800 vs champion 0.8000" in reason
    assert "-0.0200" in reason
    assert "not better than the champion" in reason


@pytest.mark.parametrize("metric", ["roc_auc", "log_loss", "brier"])
def test_tie_keeps_the_champion(metric: str) -> None:
    wins, reason = challenger_beats_champion(metric, 0.4, 0.4)

    assert wins is False
    assert "not better than the champion" in reason
    assert reason.count("0.4000") == 2


def test_tie_keeps_the_champion_even_with_zero_margin() -> None:
    assert challenger_beats_champion("roc_auc", 0.8, 0.8, absolute=0.0)[0] is False
    assert challenger_beats_champion("roc_auc", 0.8, 0.8, relative=0.0)[0] is False


@pytest.mark.parametrize("metric", ["log_loss", "brier"])
def test_lower_is_better_lower_challenger_wins(metric: str) -> None:
    wins, reason = challenger_beats_champion(metric, 0.30, 0.40)

    assert wins is True
    assert f"{metric} 0.3000 vs champion 0.4000" in reason
    assert "+0.1000" in reason  # the gain is reported in the "better" direction


@pytest.mark.parametrize("metric", ["log_loss", "brier"])
def test_lower_is_better_higher_challenger_loses(metric: str) -> None:
    wins, reason = challenger_beats_champion(metric, 0.45, 0.40)

    assert wins is False
    assert "-0.0500" in reason
    assert "not better than the champion" in reason


def test_absolute_margin_met() -> None:
    wins, reason = challenger_beats_champion("roc_auc", 0.83, 0.80, absolute=0.02)

    assert wins is True
    assert "(+0.0200)" in reason  # the rule, shown in metric units
    assert "0.8300" in reason and "0.8000" in reason


def test_absolute_margin_not_met_keeps_champion() -> None:
    wins, reason = challenger_beats_champion("roc_auc", 0.81, 0.80, absolute=0.02)

    assert wins is False
    assert "improvement below the required 0.0200" in reason
    assert "0.8100" in reason and "0.8000" in reason


def test_absolute_margin_lower_is_better() -> None:
    assert challenger_beats_champion("log_loss", 0.40, 0.45, absolute=0.03)[0] is True
    wins, reason = challenger_beats_champion("log_loss", 0.44, 0.45, absolute=0.03)
    assert wins is False
    assert "improvement below the required 0.0300" in reason


def test_relative_margin_met() -> None:
    wins, reason = challenger_beats_champion("roc_auc", 0.85, 0.80, relative=0.05)  # needs +0.04

    assert wins is True
    assert "5.0% relative" in reason


def test_relative_margin_not_met_keeps_champion() -> None:
    wins, reason = challenger_beats_champion("roc_auc", 0.83, 0.80, relative=0.05)  # +0.03 < +0.04

    assert wins is False
    assert "improvement below the required 0.0400" in reason
    assert "5.0% relative" in reason
    assert "0.8300" in reason and "0.8000" in reason


def test_relative_margin_lower_is_better() -> None:
    assert challenger_beats_champion("brier", 0.15, 0.20, relative=0.2)[0] is True  # needs 0.04, gains 0.05
    wins, reason = challenger_beats_champion("brier", 0.17, 0.20, relative=0.2)  # gains 0.03
    assert wins is False
    assert "20.0% relative" in reason


@pytest.mark.parametrize(("challenger", "champion"), [(0.85, 0.84), (0.81, 0.80), (0.76, 0.75)])
def test_improvement_exactly_equal_to_absolute_margin_wins(challenger: float, champion: float) -> None:
    assert challenger_beats_champion("roc_auc", challenger, champion, absolute=0.01)[0] is True


@pytest.mark.parametrize(
    ("metric", "challenger", "champion", "absolute", "relative"),
    [
        ("roc_auc", 0.57, 0.56, 0.01, None),
        ("roc_auc", 0.11, 0.10, 0.01, None),
        ("log_loss", 0.45, 0.50, None, 0.1),
    ],
)
def test_improvement_exactly_equal_to_margin_wins_despite_float_rounding(
    metric: str, challenger: float, champion: float, absolute: float | None, relative: float | None
) -> None:
    wins, reason = challenger_beats_champion(metric, challenger, champion, absolute=absolute, relative=relative)

    assert wins is True, reason


# ------------------------------------------------------------------------------------ threshold_failures


def test_no_thresholds_no_failures() -> None:
    assert threshold_failures({"roc_auc": 0.5}, {}) == []


def test_minimum_met_for_higher_is_better() -> None:
    assert threshold_failures({"roc_auc": 0.80, "f1": 0.6}, {"roc_auc": 0.80, "f1": 0.5}) == []


def test_minimum_missed_for_higher_is_better() -> None:
    failures = threshold_failures({"roc_auc": 0.7512, "f1": 0.6}, {"roc_auc": 0.8, "f1": 0.5})

    assert failures == ["roc_auc 0.7512 < minimum 0.8"]


@pytest.mark.parametrize("metric", ["log_loss", "brier"])
def test_maximum_for_lower_is_better(metric: str) -> None:
    assert threshold_failures({metric: 0.40}, {metric: 0.40}) == []
    assert threshold_failures({metric: 0.30}, {metric: 0.40}) == []
    assert threshold_failures({metric: 0.45}, {metric: 0.40}) == [f"{metric} 0.4500 > maximum 0.4"]


def test_missing_metric_is_a_failure() -> None:
    failures = threshold_failures({"accuracy": 0.9}, {"roc_auc": 0.8})

    assert failures == ["roc_auc: not computed on the test set"]


def test_every_failure_is_listed() -> None:
    failures = threshold_failures({"roc_auc": 0.6, "log_loss": 0.9}, {"roc_auc": 0.8, "log_loss": 0.5, "pr_auc": 0.3})

    assert len(failures) == 3
    assert any(f.startswith("roc_auc 0.6000 < minimum") for f in failures)
    assert any(f.startswith("log_loss 0.9000 > maximum") for f in failures)
    assert any(f.startswith("pr_auc: not computed") for f in failures)


# ------------------------------------------------------------------------------------ target.positive_label


def target(positive: Any = None) -> TargetSpec:
    return TargetSpec(column="churn", positive=positive)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["No", "Yes", "No"], "Yes"),
        (["yes", "no"], "yes"),
        (["n", "y"], "y"),
        (["negative", "positive"], "positive"),
        ([0, 1, 1], 1),
        ([0.0, 1.0], 1.0),
        (["0", "1"], "1"),
        ([False, True], True),
        (["False", "True"], "True"),
        (["f", "t"], "t"),
        ([" Yes ", "No"], " Yes "),  # whitespace is ignored when inferring, the label itself is returned
    ],
)
def test_positive_label_is_inferred(values: list[Any], expected: Any) -> None:
    label = positive_label(pd.Series(values), target())

    assert label == expected
    assert isinstance(label, str) == isinstance(expected, str)  # the label as found in the data, not its text


def test_positive_label_ignores_missing_values() -> None:
    assert positive_label(pd.Series(["No", None, "Yes", np.nan]), target()) == "Yes"


def test_given_positive_label_is_returned_as_found_in_the_data() -> None:
    assert positive_label(pd.Series(["Churned", "Stayed"]), target("churned")) == "Churned"
    assert positive_label(pd.Series(["1", "0"]), target(1)) == "1"


def test_given_positive_label_overrides_inference() -> None:
    assert positive_label(pd.Series(["Yes", "No"]), target("No")) == "No"


def test_given_positive_label_not_in_the_data() -> None:
    with pytest.raises(DataValidationError) as info:
        positive_label(pd.Series(["Yes", "No"]), target("Maybe"))

    assert "'Maybe' never occurs" in info.value.message
    assert info.value.failures == ["target: positive label 'Maybe' not found"]
    assert info.value.hint is not None and "target.positive" in info.value.hint


def test_the_rarer_of_two_labels_without_a_positive_word_is_positive() -> None:
    assert positive_label(pd.Series(["good", "bad", "good"]), target()) == "bad"  # modeldata's credit_data
    assert positive_label(pd.Series([0.0, 1e30, 1e30]), target()) == 0.0


def test_ambiguous_labels_are_rejected() -> None:
    with pytest.raises(DataValidationError) as info:
        positive_label(pd.Series(["cat", "dog", "dog", "cat"]), target())

    assert "cannot tell which of" in info.value.message
    assert "'cat'" in info.value.message and "'dog'" in info.value.message
    assert info.value.failures == ["target: positive class ambiguous"]
    assert info.value.hint is not None and "positive:" in info.value.hint
    assert info.value.exit_code == 5


def test_more_than_two_labels_are_rejected() -> None:
    with pytest.raises(DataValidationError) as info:
        positive_label(pd.Series(["a", "b", "c", "a"]), target())

    assert "3 distinct labels" in info.value.message
    assert "a binary target has 2" in info.value.message
    assert info.value.failures == ["target: 3 labels, expected 2"]


def test_more_than_two_labels_are_rejected_even_with_a_given_positive() -> None:
    with pytest.raises(DataValidationError, match="4 distinct labels"):
        positive_label(pd.Series([0, 1, 2, 3]), target(1))


def test_single_label_and_empty_column() -> None:
    assert positive_label(pd.Series(["Yes", "Yes"]), target()) == "Yes"
    assert positive_label(pd.Series([], dtype=object), target()) is None
    assert positive_label(pd.Series([], dtype=object), target("Yes")) == "Yes"


def test_given_boolean_positive_matches_one_zero_labels() -> None:
    assert positive_label(pd.Series([1, 0, 1]), target(True)) == 1


# ------------------------------------------------------------------------------------ target.encode_target


def test_encode_target_strings() -> None:
    encoded = encode_target(pd.Series(["Yes", "No", "yes", "NO"]), "Yes")

    assert encoded.dtype == np.int64
    assert encoded.tolist() == [1, 0, 1, 0]


def test_encode_target_missing_values_are_negative() -> None:
    assert encode_target(pd.Series(["Yes", None, np.nan, "No"]), "Yes").tolist() == [1, 0, 0, 0]


@pytest.mark.parametrize(
    ("values", "positive", "expected"),
    [
        ([1, 0, 1], 1, [1, 0, 1]),
        (["1", "0"], 1, [1, 0]),
        ([1, 0], "1", [1, 0]),
        ([True, False, True], True, [1, 0, 1]),
        (["True", "False"], True, [1, 0]),
        ([1.0, 0.0, np.nan], 1.0, [1, 0, 0]),
    ],
)
def test_encode_target_compares_as_text(values: list[Any], positive: Any, expected: list[int]) -> None:
    assert encode_target(pd.Series(values), positive).tolist() == expected


def test_encode_target_with_inferred_label_round_trips() -> None:
    values = pd.Series(["No", "Yes", "No", "No"])

    assert encode_target(values, positive_label(values, target())).tolist() == [0, 1, 0, 0]


@pytest.mark.parametrize(("values", "positive"), [([True, False], 1), ([1, 0], True)])
def test_encode_target_treats_one_and_true_alike(values: list[Any], positive: Any) -> None:
    assert encode_target(pd.Series(values), positive).tolist() == [1, 0]


def test_unquoted_yes_in_yaml_still_names_the_yes_label() -> None:
    """YAML 1.1 reads `positive: Yes` as True; it must still mean the "Yes" label, not fail."""
    import yaml

    positive = yaml.safe_load("positive: Yes")["positive"]
    assert positive is True
    values = pd.Series(["No", "Yes", "Yes", "No"])
    assert positive_label(values, target(positive)) == "Yes"
    assert encode_target(values, positive).tolist() == [0, 1, 1, 0]
