"""Property tests (Hypothesis) for the spec loader and the cache keys.

The cache is only safe if its keys are honest: the same inputs must always give the same key, and any
change to the data, the code version or a spec section the stage reads must give a different one.
The loader must turn *any* YAML mapping into either a Spec or a SpecError, never another exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from retrainer.errors import SpecError
from retrainer.executor import cache_key
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.spec import Spec, load_spec, spec_from_dict
from retrainer.store import ArtifactRef, RunStore, frame_digest

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.PerformanceWarning")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

BASE: dict[str, Any] = {
    "name": "props",
    "source": {"path": "/data/batch.csv"},
    "target": "y",
}  # absolute: loading leaves it

# ------------------------------------------------------------------------------------ strategies
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10_000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=12),
)
yaml_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
SECTIONS = ("validation", "features", "split", "models", "evaluation", "promotion", "tracking", "notify")

# valid variations of the sections a stage's key covers: each value is a legal setting
section_changes = st.sampled_from(
    [
        ("models", {"n_trials": 3}),
        ("models", {"cv_folds": 5}),
        ("models", {"candidates": ["logistic_regression"]}),
        ("split", {"test_size": 0.3}),
        ("split", {"method": "stratified", "test_size": 0.25}),
        ("validation", {"min_rows": 50}),
        ("validation", {"max_null_fraction": 0.5}),
        ("features", {"scale": False}),
        ("features", {"encoding": "ordinal"}),
        ("evaluation", {"metric": "pr_auc"}),
        ("evaluation", {"decision_threshold": 0.4}),
        ("promotion", {"min_improvement": {"absolute": 0.01}}),
    ]
)

frames = st.integers(1, 30).flatmap(
    lambda n: st.fixed_dictionaries(
        {
            "i": st.lists(st.integers(-1000, 1000), min_size=n, max_size=n),
            "f": st.lists(st.floats(allow_nan=True, allow_infinity=False, width=64), min_size=n, max_size=n),
            "s": st.lists(st.sampled_from(["a", "b", "c", None]), min_size=n, max_size=n),
        }
    )
)


def _noop(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    return StageOutput()


def _stage(sections: tuple[str, ...], code: tuple[str, ...] = ()) -> Stage:
    return Stage(name="demo", func=_noop, needs=("data",), makes=("out",), spec_sections=sections, code=code)


def _key(tmp_path: Path, spec: Spec, stage: Stage, digest: str) -> str:
    ctx = RunContext(spec=spec, store=RunStore(str(tmp_path / "store")), run_id="r")
    return cache_key(stage, ctx, {"data": ArtifactRef(path="/x/data.parquet", kind="frame", digest=digest)})


# ------------------------------------------------------------------------------------ the loader
@SETTINGS
@given(extra=st.dictionaries(st.sampled_from((*SECTIONS, "seed", "schedule", "bogus")), yaml_values, max_size=4))
@example(extra={"validation": {"\n": None}})  # found by Hypothesis: the key's newline split the message
def test_any_mapping_is_a_spec_or_a_spec_error(tmp_path: Path, extra: dict[str, Any]) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({**BASE, **extra}))
    try:
        spec = load_spec(path)
    except SpecError as error:
        assert str(path) in error.message  # the message always says which file
        assert "\n" not in error.message  # one line
    else:
        assert spec.name == "props"


@SETTINGS
@given(text=st.text(max_size=200))
def test_any_text_is_a_spec_or_a_spec_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    with contextlib.suppress(SpecError):
        load_spec(path)


@SETTINGS
@given(change=section_changes)
def test_a_valid_spec_round_trips_through_yaml_to_the_same_digest(tmp_path: Path, change: tuple[str, Any]) -> None:
    section, value = change
    spec = spec_from_dict({**BASE, section: value})
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude={"spec_path"})))
    assert load_spec(path).digest() == spec.digest()


# ------------------------------------------------------------------------------------ the keys
@SETTINGS
@given(change=section_changes, digest=st.text(min_size=1, max_size=16))
def test_same_inputs_give_the_same_key(tmp_path: Path, change: tuple[str, Any], digest: str) -> None:
    section, value = change
    stage = _stage((section,))
    first = _key(tmp_path, spec_from_dict({**BASE, section: value}), stage, digest)
    second = _key(tmp_path, spec_from_dict({**BASE, section: value}), stage, digest)
    assert first == second


@SETTINGS
@given(change=section_changes)
def test_a_change_to_a_read_section_changes_the_key_and_others_do_not(tmp_path: Path, change: tuple[str, Any]) -> None:
    section, value = change
    before, after = spec_from_dict(BASE), spec_from_dict({**BASE, section: value})
    reader = _stage((section,))
    assert _key(tmp_path, before, reader, "d") != _key(tmp_path, after, reader, "d")
    others = tuple(s for s in SECTIONS if s != section)
    bystander = _stage(others)
    assert _key(tmp_path, before, bystander, "d") == _key(tmp_path, after, bystander, "d")


@SETTINGS
@given(first=st.text(min_size=1, max_size=16), second=st.text(min_size=1, max_size=16))
def test_a_change_to_the_data_changes_the_key(tmp_path: Path, first: str, second: str) -> None:
    spec = spec_from_dict(BASE)
    stage = _stage(("models",))
    same = _key(tmp_path, spec, stage, first) == _key(tmp_path, spec, stage, second)
    assert same == (first == second)


@pytest.mark.parametrize(
    "code", [("retrainer.target",), ("retrainer.metrics",), ("retrainer.target", "retrainer.metrics")]
)
def test_a_change_to_the_code_version_changes_the_key(tmp_path: Path, code: tuple[str, ...]) -> None:
    spec = spec_from_dict(BASE)
    assert _key(tmp_path, spec, _stage(("models",)), "d") != _key(tmp_path, spec, _stage(("models",), code), "d")


@SETTINGS
@given(data=frames, row=st.integers(0, 29), column=st.sampled_from(["i", "f", "s"]))
def test_frame_digest_is_a_function_of_content(data: dict[str, list[Any]], row: int, column: str) -> None:
    frame = pd.DataFrame(data)
    assert frame_digest(frame) == frame_digest(pd.DataFrame(data).copy())
    row %= len(frame)
    changed = frame.copy()
    old = changed.at[row, column]
    if column == "s":
        changed.at[row, column] = "z" if old != "z" else "y"
    elif column == "f":
        changed.at[row, column] = 0.5 if pd.isna(old) or old != 0.5 else 1.5
    else:
        changed.at[row, column] = old + 1
    assert frame_digest(changed) != frame_digest(frame)
