"""Loading the pipeline spec: every way a spec file can be wrong, and the defaults of a valid one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from retrainer.errors import SpecError
from retrainer.spec import CANDIDATES, DEFAULT_CANDIDATES, Spec, load_spec, parse_duration, spec_from_dict
from retrainer.tasks import BinaryTask

MINIMAL = "name: churn\nsource: {path: data.csv}\ntarget: churned\n"


def write(directory: Path, text: str, name: str = "pipeline.yaml") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_dict(directory: Path, data: dict[str, Any], name: str = "pipeline.yaml") -> Path:
    return write(directory, yaml.safe_dump(data, sort_keys=False), name)


def spec_error(path: Path, env: str | None = None) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(path, env=env)
    assert info.value.exit_code == 3
    return info.value.message


# ------------------------------------------------------------------------------------ file-level errors


def test_malformed_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nsource: {path: x.csv\ntarget: y\n")  # flow mapping never closed

    message = spec_error(path)

    assert message.startswith(f"{path}:3:")  # the parser notices on line 3
    assert "malformed YAML" in message
    assert "expected ',' or '}'" in message


def test_malformed_yaml_in_block_mapping_reports_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: t\nsource:\n  path: x.csv\n  bad: [1\ntarget: y\n")

    message = spec_error(path)

    assert message.startswith(f"{path}:5:")
    assert "malformed YAML" in message


def test_missing_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"

    with pytest.raises(SpecError) as info:
        load_spec(path)

    assert str(path) in info.value.message
    assert "not found" in info.value.message
    assert info.value.hint is not None and "retrainer init" in info.value.hint


@pytest.mark.parametrize(("text", "got"), [("- a\n- b\n", "list"), ("just a string\n", "str")])
def test_spec_must_be_a_mapping(tmp_path: Path, text: str, got: str) -> None:
    message = spec_error(write(tmp_path, text))

    assert "must be a YAML mapping" in message
    assert f"got {got}" in message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_an_empty_spec_file_says_it_is_empty(tmp_path: Path, text: str) -> None:
    assert spec_error(write(tmp_path, text)) == f"{tmp_path / 'pipeline.yaml'}: the spec file is empty"


def test_a_directory_or_a_file_that_is_not_utf8_is_one_spec_error(tmp_path: Path) -> None:
    assert spec_error(tmp_path) == f"{tmp_path}: is a directory, not a spec file"
    for encoding in ("utf-16", "utf-16-be", "utf-16-le"):
        path = tmp_path / f"{encoding}.yaml"
        path.write_bytes(("\ufeff" + MINIMAL).encode(encoding))
        assert "the file is UTF-16; specs are read as UTF-8" in spec_error(path)
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes(MINIMAL.replace("churned", "résilié").encode("latin-1"))
    assert "not UTF-8 text (byte" in spec_error(latin)
    bom = write(tmp_path, "\ufeff" + MINIMAL, "bom.yaml")  # UTF-8 with a byte-order mark reads as UTF-8
    assert load_spec(bom).name == "churn"


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        (MINIMAL + "evaluation: {thresholds: {roc_auc: 0.99}}\nseed: 1\nevaluation: {}\n", "evaluation", (4, 6)),
        (MINIMAL + "models:\n  n_trials: 3\n  cv_folds: 2\n  n_trials: 30\n", "n_trials", (5, 7)),
        (MINIMAL + "evaluation:\n  thresholds:\n    roc_auc: 0.9\n    roc_auc: 0.5\n", "roc_auc", (6, 7)),
        (MINIMAL + "notify:\n  email: {host: h, sender: a@b, to: [c@d], host: x}\n", "host", (5, 5)),
        ("name: a\n" + MINIMAL, "name", (1, 2)),
    ],
    ids=["top-level", "nested", "deeper", "flow-mapping", "first-line"],
)
def test_a_key_given_twice_at_any_depth_names_both_lines(
    tmp_path: Path, text: str, key: str, lines: tuple[int, int]
) -> None:
    path = write(tmp_path, text)

    message = spec_error(path)

    assert message.startswith(f"{path}:{lines[1]}:")
    assert f"duplicate key '{key}' on lines {lines[0]} and {lines[1]}" in message


def test_a_merge_key_may_be_overridden_without_a_duplicate_error(tmp_path: Path) -> None:
    text = MINIMAL + "x-base: &base {n_trials: 3, cv_folds: 2}\nmodels:\n  <<: *base\n  n_trials: 5\n"
    spec = spec_from_dict({k: v for k, v in yaml.safe_load(text).items() if k != "x-base"})
    assert spec.models.n_trials == 5 and spec.models.cv_folds == 2
    from retrainer.strict_yaml import parse_yaml

    assert parse_yaml(text)["models"] == {"n_trials": 5, "cv_folds": 2}


def test_a_zero_tuning_budget_is_a_spec_error(tmp_path: Path) -> None:
    for budget in ("0s", "0", "0m"):
        message = spec_error(write(tmp_path, MINIMAL + f"models: {{timeout: '{budget}'}}\n"))
        assert "models.timeout: the tuning budget must be more than 0" in message
    assert load_spec(write(tmp_path, MINIMAL + "models: {timeout: 1s}\n")).models.timeout_seconds == 1


# ------------------------------------------------------------------------------------ validation errors


def test_unknown_top_level_key_suggests_the_close_one(tmp_path: Path) -> None:
    message = spec_error(write(tmp_path, MINIMAL + "modles: {n_trials: 3}\n"))

    assert str(tmp_path / "pipeline.yaml") in message
    assert "modles: unknown key" in message
    assert "did you mean 'models'?" in message


def test_unknown_nested_key_suggests_the_close_one(tmp_path: Path) -> None:
    message = spec_error(write(tmp_path, MINIMAL + "models: {n_trail: 3}\n"))

    assert "models.n_trail: unknown key" in message
    assert "did you mean 'n_trials'?" in message


def test_unknown_key_with_no_close_match_has_no_suggestion(tmp_path: Path) -> None:
    message = spec_error(write(tmp_path, MINIMAL + "zzzzzzzz: 1\n"))

    assert "zzzzzzzz: unknown key" in message
    assert "did you mean" not in message


def test_wrong_type_names_the_key_path_and_the_value(tmp_path: Path) -> None:
    message = spec_error(write(tmp_path, MINIMAL + "models: {n_trials: abc}\n"))

    assert "1 spec error:" in message
    assert "models.n_trials:" in message
    assert "valid integer" in message
    assert "(got 'abc')" in message


@pytest.mark.parametrize("schedule", ["61 * * * *", "every day", "* * *"])
def test_invalid_cron_is_a_spec_error_at_load_time(tmp_path: Path, schedule: str) -> None:
    message = spec_error(write(tmp_path, MINIMAL + f"schedule: {schedule!r}\n"))

    assert "schedule: invalid cron expression" in message


@pytest.mark.parametrize("schedule", ["0 3 * * 1", "@weekly", "*/15 * * * *"])
def test_valid_cron_and_presets_load(tmp_path: Path, schedule: str) -> None:
    assert load_spec(write(tmp_path, MINIMAL + f"schedule: {schedule!r}\n")).schedule == schedule


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    message = spec_error(write(tmp_path, MINIMAL + "models: {n_trials: abc, cv_folds: 1}\nmodles: {}\n"))

    assert "3 spec errors:" in message
    assert "models.n_trials:" in message
    assert "models.cv_folds:" in message
    assert "modles: unknown key" in message


def test_missing_required_key(tmp_path: Path) -> None:
    message = spec_error(write(tmp_path, "name: churn\ntarget: churned\n"))

    assert "source: required key is missing" in message


def test_unknown_candidate_lists_the_choices(tmp_path: Path) -> None:
    message = spec_error(write(tmp_path, MINIMAL + "models: {candidates: [xgbost]}\n"))

    assert "models.candidates:" in message
    assert "unknown candidate 'xgbost'" in message
    assert "did you mean 'xgboost'?" in message
    assert all(name in message for name in CANDIDATES)


def test_empty_candidate_list_is_rejected(tmp_path: Path) -> None:
    message = spec_error(write(tmp_path, MINIMAL + "models: {candidates: []}\n"))

    assert "models.candidates: list at least one candidate" in message


def test_threshold_out_of_range(tmp_path: Path) -> None:
    message = spec_error(write(tmp_path, MINIMAL + "evaluation: {thresholds: {roc_auc: 1.5}}\n"))

    assert "evaluation.thresholds:" in message
    assert "threshold for roc_auc must be between 0 and 1, got 1.5" in message


def test_lower_is_better_threshold_may_exceed_one(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL + "evaluation: {thresholds: {log_loss: 1.5}}\n"))

    assert spec.evaluation.thresholds == {"log_loss": 1.5}


def test_unknown_threshold_metric_suggests_the_close_one(tmp_path: Path) -> None:
    message = spec_error(write(tmp_path, MINIMAL + "evaluation: {thresholds: {roc_acu: 0.8}}\n"))

    assert "unknown metric 'roc_acu'" in message
    assert "did you mean 'roc_auc'?" in message


def test_temporal_split_needs_time_column(tmp_path: Path) -> None:
    message = spec_error(write(tmp_path, MINIMAL + "split: {method: temporal}\n"))

    assert "split.method 'temporal' needs 'time_column'" in message


def test_temporal_split_with_time_column_is_valid(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL + "time_column: signup\nsplit: {method: temporal, oot_size: 0.1}\n"))

    assert spec.split.method == "temporal"
    assert spec.time_column == "signup"


def test_invalid_timeout_duration(tmp_path: Path) -> None:
    message = spec_error(write(tmp_path, MINIMAL + "models: {timeout: ten minutes}\n"))

    assert "models.timeout:" in message
    assert "not a duration: 'ten minutes'" in message


def test_valid_timeout_is_exposed_in_seconds(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL + "models: {timeout: 10m}\n"))

    assert spec.models.timeout == "10m"
    assert spec.models.timeout_seconds == 600.0


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ({"path": "x.csv", "url": "sqlite:///x.db", "table": "t"}, "exactly one of 'url'"),
        ({}, "exactly one of 'url'"),
        ({"url": "sqlite:///x.db"}, "exactly one of 'query' or 'table'"),
        ({"url": "sqlite:///x.db", "query": "SELECT 1", "table": "t"}, "exactly one of 'query' or 'table'"),
        ({"path": "data.xlsx"}, "path must end in .csv"),
    ],
)
def test_invalid_source(source: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict({"name": "t", "source": source, "target": "y"})

    assert "source:" in info.value.message
    assert fragment in info.value.message


def test_invalid_pipeline_name() -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict({"name": "has space", "source": {"path": "x.csv"}, "target": "y"})

    assert "name:" in info.value.message
    assert "'has space'" in info.value.message


def test_both_improvement_rules_are_rejected() -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict(
            {
                "name": "t",
                "source": {"path": "x.csv"},
                "target": "y",
                "promotion": {"min_improvement": {"absolute": 0.01, "relative": 0.01}},
            }
        )

    assert "promotion.min_improvement:" in info.value.message
    assert "not both" in info.value.message


def test_spec_from_dict_error_names_its_origin() -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict({"name": "t", "target": "y"}, origin="my-origin")

    assert info.value.message.startswith("my-origin: 1 spec error:")


# ------------------------------------------------------------------------------------ interpolation


def test_missing_environment_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETRAINER_TEST_DATA_DIR", raising=False)
    path = write(tmp_path, "name: t\nsource: {path: '${RETRAINER_TEST_DATA_DIR}/x.csv'}\ntarget: y\n")

    with pytest.raises(SpecError) as info:
        load_spec(path)

    assert "RETRAINER_TEST_DATA_DIR" in info.value.message
    assert "source.path" in info.value.message
    assert "not set" in info.value.message
    assert info.value.hint is not None and "${RETRAINER_TEST_DATA_DIR:-default}" in info.value.hint


def test_missing_environment_variable_in_a_list_names_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RETRAINER_TEST_DROP", raising=False)
    path = write(tmp_path, MINIMAL + "features: {drop: [a, '${RETRAINER_TEST_DROP}']}\n")

    message = spec_error(path)

    assert "features.drop.1" in message
    assert "RETRAINER_TEST_DROP" in message


def test_default_is_used_when_variable_is_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETRAINER_TEST_NAME", raising=False)
    monkeypatch.delenv("RETRAINER_TEST_TRIALS", raising=False)
    path = write(
        tmp_path,
        "name: '${RETRAINER_TEST_NAME:-fallback}'\nsource: {path: x.csv}\ntarget: y\n"
        "models: {n_trials: '${RETRAINER_TEST_TRIALS:-7}'}\n",
    )

    spec = load_spec(path)

    assert spec.name == "fallback"
    assert spec.models.n_trials == 7


def test_empty_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETRAINER_TEST_DESC", raising=False)
    spec = load_spec(write(tmp_path, MINIMAL + "description: 'x${RETRAINER_TEST_DESC:-}y'\n"))

    assert spec.description == "xy"


def test_set_variable_is_substituted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINER_TEST_NAME", "from-env")
    monkeypatch.setenv("RETRAINER_TEST_TABLE", "customers")
    path = write(
        tmp_path,
        "name: '${RETRAINER_TEST_NAME:-fallback}'\n"
        "source: {url: 'sqlite:///:memory:', table: '${RETRAINER_TEST_TABLE}'}\ntarget: y\n",
    )

    spec = load_spec(path)

    assert spec.name == "from-env"  # the environment wins over the default
    assert spec.source.table == "customers"


def test_several_variables_in_one_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINER_TEST_USER", "alice")
    monkeypatch.setenv("RETRAINER_TEST_HOST", "db.example")
    spec = load_spec(
        write(
            tmp_path,
            "name: t\ntarget: y\n"
            "source: {url: 'postgresql+psycopg://${RETRAINER_TEST_USER}@${RETRAINER_TEST_HOST}/db', table: t}\n",
        )
    )

    assert spec.source.url == "postgresql+psycopg://alice@db.example/db"


# ------------------------------------------------------------------------------------ --env overlays


def test_env_overlay_merges_deeply(tmp_path: Path) -> None:
    base = write_dict(
        tmp_path,
        {
            "name": "churn",
            "source": {"path": "data.csv"},
            "target": "churned",
            "models": {"candidates": ["logistic_regression"], "n_trials": 5, "cv_folds": 4},
            "validation": {"min_rows": 10},
        },
    )
    write_dict(
        tmp_path,
        {"models": {"n_trials": 50}, "store": "/srv/store", "validation": {"max_null_fraction": 0.5}},
        "pipeline.staging.yaml",
    )

    spec = load_spec(base, env="staging")
    plain = load_spec(base)

    assert spec.models.n_trials == 50  # overlaid
    assert spec.models.candidates == ["logistic_regression"]  # kept from the base
    assert spec.models.cv_folds == 4
    assert spec.validation.min_rows == 10
    assert spec.validation.max_null_fraction == 0.5
    assert spec.store == "/srv/store"
    assert plain.models.n_trials == 5
    assert plain.store == ".retrainer"


def test_env_overlay_lists_replace_rather_than_append(tmp_path: Path) -> None:
    base = write(tmp_path, MINIMAL + "models: {candidates: [logistic_regression, lightgbm]}\n")
    write(tmp_path, "models: {candidates: [xgboost]}\n", "pipeline.prod.yaml")

    assert load_spec(base, env="prod").models.candidates == ["xgboost"]


def test_env_overlay_is_interpolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINER_TEST_STORE", "/mnt/store")
    base = write(tmp_path, MINIMAL)
    write(tmp_path, "store: '${RETRAINER_TEST_STORE}'\n", "pipeline.ci.yaml")

    assert load_spec(base, env="ci").store == "/mnt/store"


def test_missing_overlay_file(tmp_path: Path) -> None:
    base = write(tmp_path, MINIMAL)

    with pytest.raises(SpecError) as info:
        load_spec(base, env="staging")

    assert str(tmp_path / "pipeline.staging.yaml") in info.value.message
    assert "--env staging not found" in info.value.message
    assert info.value.hint is not None and "pipeline.staging.yaml" in info.value.hint


def test_invalid_value_in_overlay_is_reported(tmp_path: Path) -> None:
    base = write(tmp_path, MINIMAL)
    write(tmp_path, "models: {n_trials: 0}\n", "pipeline.dev.yaml")

    message = spec_error(base, env="dev")

    assert "models.n_trials:" in message
    assert "(got 0)" in message


# ------------------------------------------------------------------------------------ relative paths


def test_relative_csv_path_is_resolved_against_the_spec_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write(tmp_path / "project", "name: t\nsource: {path: data/train.csv}\ntarget: y\n")

    spec = load_spec(path)

    assert spec.source.path == str((tmp_path / "project" / "data" / "train.csv").resolve())
    assert spec.spec_path == str(path.resolve())


def test_relative_sqlite_url_is_resolved_against_the_spec_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "project", "name: t\nsource: {url: 'sqlite:///db/telco.db', table: customers}\ntarget: y\n")

    spec = load_spec(path)

    assert spec.source.url == "sqlite:///" + str((tmp_path / "project" / "db" / "telco.db").resolve())


@pytest.mark.parametrize(
    "source",
    [
        {"url": "sqlite:////abs/telco.db", "table": "t"},
        {"url": "sqlite:///:memory:", "table": "t"},
        {"url": "postgresql+psycopg://u@host/db", "table": "t"},
        {"path": "s3://bucket/data.parquet"},
        {"path": "/abs/data.csv"},
    ],
)
def test_absolute_and_remote_sources_are_left_alone(tmp_path: Path, source: dict[str, str]) -> None:
    spec = load_spec(write_dict(tmp_path / "project", {"name": "t", "source": source, "target": "y"}))

    assert spec.source.url == source.get("url")
    assert spec.source.path == source.get("path")


# ------------------------------------------------------------------------------------ defaults


def test_minimal_spec_gets_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, MINIMAL))

    assert isinstance(spec, Spec)
    assert spec.models.candidates is None  # the task's defaults (DEFAULT_CANDIDATES by kind of estimator)
    assert spec.task is None  # inferred from the target at the split
    assert "logistic_regression" in DEFAULT_CANDIDATES["classifier"]
    assert spec.models.n_trials == 10
    assert spec.models.timeout_seconds is None
    assert spec.evaluation.metric is None  # the task's default: roc_auc for a binary target
    assert BinaryTask("Yes").ranking_metric(spec) == "roc_auc"
    assert spec.registry_name == "churn"
    assert spec.split.method == "stratified"
    assert spec.validation.min_rows is None and spec.validation.limit("min_rows") == 100  # a default: warns
    assert spec.store == ".retrainer"
    assert spec.target.positive is None


def test_registry_name_override() -> None:
    spec = spec_from_dict(
        {"name": "t", "source": {"path": "x.csv"}, "target": "y", "promotion": {"registry_name": "prod-churn"}}
    )

    assert spec.registry_name == "prod-churn"


def test_target_shorthand_string(tmp_path: Path) -> None:
    short = load_spec(write(tmp_path, MINIMAL))
    full = load_spec(write(tmp_path, "name: churn\nsource: {path: data.csv}\ntarget: {column: churned}\n", "full.yaml"))

    assert short.target.column == "churned"
    assert short.target == full.target


def test_target_with_positive_label() -> None:
    spec = spec_from_dict({"name": "t", "source": {"path": "x.csv"}, "target": {"column": "churn", "positive": "Yes"}})

    assert spec.target.column == "churn"
    assert spec.target.positive == "Yes"


def test_spec_is_frozen() -> None:
    spec = spec_from_dict({"name": "t", "source": {"path": "x.csv"}, "target": "y"})

    with pytest.raises(Exception, match="frozen"):
        spec.name = "other"  # type: ignore[misc]


# ------------------------------------------------------------------------------------ parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("10m", 600.0),
        ("1.5h", 5400.0),
        ("2d", 172800.0),
        ("500ms", 0.5),
        ("45", 45.0),
        (" 30 s ", 30.0),
        ("0s", 0.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "10x", "-5s", "1h30m", "m10", "ten minutes"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)
