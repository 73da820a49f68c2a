"""Cache keys and the run store: equal inputs give equal keys, any relevant change gives a new one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.executor import cache_key
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.spec import Spec, spec_from_dict
from retrainer.store import ArtifactRef, RunStore, frame_digest

# ------------------------------------------------------------------------------------ helpers


def _noop(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    return StageOutput(artifacts={"out": len(inputs)})


@dataclass(frozen=True)
class Payload:
    name: str
    values: tuple[int, ...]


BASE: dict[str, Any] = {"name": "t", "source": {"path": "x.csv"}, "target": "y"}


def make_spec(**sections: Any) -> Spec:
    return spec_from_dict({**BASE, **sections})


def make_frame() -> pd.DataFrame:
    return pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5], "c": ["x", "y", "z"]})


def random_frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    return pd.DataFrame(
        {
            "i": rng.integers(-1000, 1000, n),
            "f": rng.normal(size=n),
            "s": rng.choice(["a", "b", "c", "d"], n),
            "b": rng.random(n) > 0.5,
        }
    )


def _other_value(value: Any) -> Any:
    """A different value of the same type."""
    if isinstance(value, bool | np.bool_):
        return not value
    if isinstance(value, str):
        return value + "!"
    return value + 1


def stage(**overrides: Any) -> Stage:
    fields: dict[str, Any] = {
        "name": "demo",
        "func": _noop,
        "needs": ("data",),
        "makes": ("out",),
        "spec_sections": ("models",),
    }
    fields.update(overrides)
    return Stage(**fields)


def context(tmp_path: Path, spec: Spec | None = None, run_id: str = "run-1") -> RunContext:
    return RunContext(spec=spec or make_spec(), store=RunStore(str(tmp_path / "store")), run_id=run_id)


def refs(digest: str = "d1", path: str = "/store/cache/extract/k/data.parquet") -> dict[str, ArtifactRef]:
    return {"data": ArtifactRef(path=path, kind="frame", digest=digest)}


# ------------------------------------------------------------------------------------ frame_digest


def test_frame_digest_is_stable_for_equal_frames() -> None:
    assert frame_digest(make_frame()) == frame_digest(make_frame())
    assert frame_digest(make_frame()) == frame_digest(make_frame().copy(deep=True))
    assert len(frame_digest(make_frame())) == 16


def test_frame_digest_ignores_the_index() -> None:
    assert frame_digest(make_frame()) == frame_digest(make_frame().set_axis([10, 20, 30]))


def test_frame_digest_changes_with_a_value() -> None:
    changed = make_frame()
    changed.loc[1, "b"] = 1.5000001

    assert frame_digest(changed) != frame_digest(make_frame())


def test_frame_digest_changes_with_a_column_name() -> None:
    assert frame_digest(make_frame().rename(columns={"c": "d"})) != frame_digest(make_frame())


def test_frame_digest_changes_with_a_dtype() -> None:
    frame = make_frame()

    assert frame_digest(frame.astype({"a": "float64"})) != frame_digest(frame)
    assert frame_digest(frame.astype({"a": "int32"})) != frame_digest(frame)
    assert frame_digest(frame.astype({"c": "category"})) != frame_digest(frame)


def test_frame_digest_changes_with_row_order() -> None:
    frame = make_frame()

    assert frame_digest(frame.iloc[::-1].reset_index(drop=True)) != frame_digest(frame)


def test_frame_digest_changes_with_column_order() -> None:
    frame = make_frame()

    assert frame_digest(frame[["c", "b", "a"]]) != frame_digest(frame)


def test_frame_digest_changes_when_values_swap_columns() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": [3, 4]})

    assert frame_digest(pd.DataFrame({"a": [3, 4], "b": [1, 2]})) != frame_digest(frame)


def test_frame_digest_distinguishes_null_from_value() -> None:
    frame = pd.DataFrame({"a": [1.0, 0.0]})

    assert frame_digest(pd.DataFrame({"a": [1.0, np.nan]})) != frame_digest(frame)


@pytest.mark.parametrize("seed", range(25))
def test_frame_digest_property_equal_copies_and_any_cell_change(seed: int) -> None:
    """Property (Hypothesis is not installed, so 25 seeded random frames): copies agree, any changed cell disagrees."""
    frame = random_frame(seed)
    rng = np.random.default_rng(seed + 1000)
    row, column = int(rng.integers(len(frame))), str(rng.choice(frame.columns))
    changed = frame.copy()
    old = changed.at[row, column]
    changed.at[row, column] = _other_value(old)
    assert changed.dtypes.equals(frame.dtypes)  # only the value differs

    assert frame_digest(frame.copy()) == frame_digest(frame)
    assert frame_digest(changed) != frame_digest(frame)
    if len(frame) > 1 and not frame.iloc[0].equals(frame.iloc[-1]):
        assert frame_digest(frame.iloc[::-1]) != frame_digest(frame)


# ------------------------------------------------------------------------------------ Spec.section_digest


def test_section_digest_is_stable() -> None:
    assert make_spec().section_digest("models", "validation") == make_spec().section_digest("models", "validation")
    assert len(make_spec().section_digest("models")) == 16


def test_section_digest_changes_only_with_its_section() -> None:
    base = make_spec()
    changed = make_spec(models={"n_trials": 11})

    assert changed.section_digest("models") != base.section_digest("models")
    assert changed.section_digest("validation", "target") == base.section_digest("validation", "target")
    assert changed.section_digest("models", "target") != base.section_digest("models", "target")


def test_section_digest_of_top_level_scalars() -> None:
    base = make_spec()

    assert make_spec(id_column="cid").section_digest("id_column") != base.section_digest("id_column")
    assert make_spec(id_column="cid").section_digest("models") == base.section_digest("models")
    assert make_spec(seed=7).section_digest("seed") != base.section_digest("seed")


def test_section_digest_ignores_section_order_and_spec_path() -> None:
    spec = make_spec()

    assert spec.section_digest("models", "target") == spec.section_digest("target", "models")
    assert make_spec(spec_path="/a/pipeline.yaml").section_digest("models", "target") == make_spec(
        spec_path="/b/p.yaml"
    ).section_digest("models", "target")


def test_section_digest_sees_through_defaults_and_shorthand() -> None:
    assert make_spec(target="y").section_digest("target") == make_spec(target={"column": "y"}).section_digest("target")
    assert make_spec().section_digest("models") == make_spec(models={"n_trials": 10}).section_digest("models")


def test_section_digest_distinguishes_sections() -> None:
    spec = make_spec()

    assert spec.section_digest("models") != spec.section_digest("validation")
    assert spec.section_digest("models") != spec.section_digest("models", "validation")


def test_whole_spec_digest_changes_with_any_section() -> None:
    assert make_spec(models={"n_trials": 11}).digest() != make_spec().digest()
    assert make_spec(description="changed").digest() != make_spec().digest()
    assert make_spec().digest() == make_spec().digest()


# ------------------------------------------------------------------------------------ executor.cache_key


def test_cache_key_equal_for_equal_inputs(tmp_path: Path) -> None:
    first = cache_key(stage(), context(tmp_path), refs())
    second = cache_key(stage(), context(tmp_path / "other", run_id="run-2"), refs())

    assert first == second  # run id and store location are not inputs
    assert len(first) == 16


def test_cache_key_changes_with_its_spec_section(tmp_path: Path) -> None:
    base = cache_key(stage(), context(tmp_path, make_spec()), refs())

    assert cache_key(stage(), context(tmp_path, make_spec(models={"n_trials": 3})), refs()) != base


def test_cache_key_ignores_other_spec_sections(tmp_path: Path) -> None:
    base = cache_key(stage(), context(tmp_path, make_spec()), refs())

    assert cache_key(stage(), context(tmp_path, make_spec(validation={"min_rows": 5}, description="x")), refs()) == base


def test_cache_key_changes_with_an_input_digest(tmp_path: Path) -> None:
    ctx = context(tmp_path)

    assert cache_key(stage(), ctx, refs("d1")) != cache_key(stage(), ctx, refs("d2"))


def test_cache_key_depends_on_input_content_not_location(tmp_path: Path) -> None:
    ctx = context(tmp_path)

    assert cache_key(stage(), ctx, refs("d1", "/one/data.parquet")) == cache_key(
        stage(), ctx, refs("d1", "/two/data.parquet")
    )


def test_cache_key_ignores_artifacts_the_stage_does_not_need(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    extra = {**refs(), "other": ArtifactRef(path="/x.json", kind="json", digest="zzz")}

    assert cache_key(stage(), ctx, extra) == cache_key(stage(), ctx, refs())


def test_cache_key_changes_when_a_needed_input_appears(tmp_path: Path) -> None:
    ctx = context(tmp_path)

    assert cache_key(stage(), ctx, {}) != cache_key(stage(), ctx, refs())


def test_cache_key_changes_with_the_fingerprint(tmp_path: Path) -> None:
    ctx = context(tmp_path)

    def fingerprint_v1(ctx: RunContext) -> str:
        return "rows=100"

    def fingerprint_v2(ctx: RunContext) -> str:
        return "rows=101"

    with_v1 = cache_key(stage(fingerprint=fingerprint_v1), ctx, refs())

    assert with_v1 == cache_key(stage(fingerprint=fingerprint_v1), ctx, refs())
    assert with_v1 != cache_key(stage(fingerprint=fingerprint_v2), ctx, refs())
    assert with_v1 != cache_key(stage(), ctx, refs())


def test_cache_key_fingerprint_sees_the_context(tmp_path: Path) -> None:
    def by_name(ctx: RunContext) -> str:
        return ctx.spec.name

    assert cache_key(stage(fingerprint=by_name), context(tmp_path, make_spec(name="a")), refs()) != cache_key(
        stage(fingerprint=by_name), context(tmp_path, make_spec(name="b")), refs()
    )


def test_cache_key_changes_with_the_stage_name(tmp_path: Path) -> None:
    ctx = context(tmp_path)

    assert cache_key(stage(name="one"), ctx, refs()) != cache_key(stage(name="two"), ctx, refs())


def test_cache_key_changes_with_the_declared_code(tmp_path: Path) -> None:
    ctx = context(tmp_path)

    assert cache_key(stage(code=("retrainer.target",)), ctx, refs()) != cache_key(stage(), ctx, refs())
    assert stage().code_version() == stage().code_version()


# ------------------------------------------------------------------------------------ RunStore


def test_round_trip_dataframe(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "store"))
    frame = make_frame()

    ref = store.save_artifact(store.cache_dir("extract", "k1"), "data", frame)

    assert ref.kind == "frame"
    assert ref.path.endswith("/cache/extract/k1/data.parquet")
    assert ref.digest == frame_digest(frame)
    assert Path(ref.path).exists()
    pd.testing.assert_frame_equal(store.load_artifact(ref), frame)


def test_round_trip_dict(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "store"))
    value = {"passed": True, "checks": [{"name": "min_rows", "observed": 5}], "score": 0.5}

    ref = store.save_artifact(store.cache_dir("validate", "k"), "validation", value)

    assert ref.kind == "json"
    assert ref.path.endswith("validation.json")
    assert store.load_artifact(ref) == value
    assert store.save_artifact(store.cache_dir("validate", "k2"), "validation", dict(value)).digest == ref.digest


def test_round_trip_object(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "store"))
    value = Payload("model", (1, 2, 3))
    array = np.arange(6).reshape(2, 3)

    ref = store.save_artifact(store.cache_dir("train", "k"), "model", value)
    array_ref = store.save_artifact(store.cache_dir("train", "k"), "array", array)

    assert ref.kind == "object"
    assert ref.path.endswith("model.joblib")
    assert store.load_artifact(ref) == value
    np.testing.assert_array_equal(store.load_artifact(array_ref), array)


def test_artifact_ref_survives_a_manifest(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "store"))
    ref = store.save_artifact(store.cache_dir("s", "k"), "data", make_frame())
    store.write_manifest("s", "k", {"artifacts": {"data": {"path": ref.path, "kind": ref.kind, "digest": ref.digest}}})

    manifest = store.read_manifest("s", "k")

    assert manifest is not None
    restored = ArtifactRef(**manifest["artifacts"]["data"])
    assert restored == ref
    pd.testing.assert_frame_equal(store.load_artifact(restored), make_frame())


def test_read_manifest_returns_none_for_a_missing_entry(tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "store"))

    assert store.read_manifest("extract", "0123456789abcdef") is None
    store.save_artifact(store.cache_dir("extract", "partial"), "data", make_frame())  # artifacts but no manifest yet
    assert store.read_manifest("extract", "partial") is None


def test_store_root_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    store = RunStore("relative-store")

    assert store.is_local
    assert store.root == str((tmp_path / "relative-store").resolve())


def test_tuning_is_keyed_on_what_scores_a_trial_not_on_the_promotion_gates(tmp_path: Path) -> None:
    from retrainer.stages.tune import STAGE as TUNE

    def tune_key(**evaluation: Any) -> str:
        return cache_key(TUNE, context(tmp_path, make_spec(evaluation=evaluation)), refs())

    base = tune_key()
    assert tune_key(thresholds={"roc_auc": 0.7}) == base  # a gate: decided after tuning
    assert tune_key(metric="pr_auc") != base  # what trials are scored by
    assert tune_key(threshold_metric="f1") != base  # changes the fits train reserves time for


def test_a_package_in_the_declared_code_covers_every_module_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrainer.pipeline import _code_digest

    package = tmp_path / "somepkg"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "inner" / "__init__.py").write_text("")
    (package / "inner" / "rule.py").write_text("LIMIT = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = _code_digest(("somepkg",))

    (package / "inner" / "rule.py").write_text("LIMIT = 2\n")  # a submodule, two levels down

    assert _code_digest(("somepkg",)) != before
