"""Fault injection: SIGKILL at every stage boundary and inside register and promote loses nothing.

One registry starts with a weak champion. Then the same better spec is run again and again, each
process killed (SIGKILL, no cleanup) at the next point of the pipeline; every run resumes from what
the killed ones left. After each kill: `champion` points at a fully validated version, every run
record and cache manifest in the store parses, and no alias sits on a half-registered version.
Finally a clean run finishes and the better model is champion, exactly once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import retrainer
from crash_invariants import assert_consistent, registry
from retrainer.faults import KILL_AT, KILL_ONCE
from retrainer.promotion import read_audit
from retrainer.stages import default_pipeline
from retrainer.store import RunStore

# every stage of the pipeline as it is built, so a stage added later is killed before too
_NAMES = default_pipeline().names
STAGES = tuple(_NAMES[: _NAMES.index("register") + 1])
# in the order a run reaches them, so each resumed run gets one step further than the last
KILL_POINTS = (
    *(f"before:{stage}" for stage in STAGES),
    "register:logged",  # MLflow run logged, no version yet
    "register:versioned",  # version created, not yet tagged validated
    "before:readiness",
    "readiness:measured",  # the fresh process measured the version; nothing tagged yet
    "before:promote",
    "alias:previous:before",
    "alias:champion:before",  # `previous` moved, `champion` not yet
    "alias:champion:after",  # `champion` moved, the decision not yet tagged
    "before:notify",
)


def _cli_main(args: list[str], kill_at: str | None, output: str) -> None:
    """The body of `retrainer ARGS` in a child process, its output to a file."""
    os.environ.pop(KILL_AT, None)
    if kill_at:
        os.environ[KILL_AT] = kill_at
    with open(output, "w") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        sys.argv = ["retrainer", *args]
        from retrainer.cli import entrypoint

        entrypoint()


def run_cli(spec: Path, kill_at: str | None = None) -> tuple[int | None, str]:
    """Run `retrainer -q run SPEC` in a fresh child process; its exit code (-9 when killed) and output.

    Children fork from a server that has already imported retrainer, MLflow and scikit-learn, so each
    of the many runs here pays for a run, not for Python start-up; each is still its own process.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["retrainer.cli", "retrainer.executor", "mlflow", "sklearn.linear_model"])
    output = spec.with_suffix(".out")
    child = context.Process(target=_cli_main, args=(["-q", "run", str(spec)], kill_at, str(output)))
    child.start()
    child.join(timeout=300)
    return child.exitcode, output.read_text()


@pytest.mark.slow
def test_a_kill_at_any_point_never_leaves_production_on_an_unvalidated_model(
    telco_db: Callable[..., str], write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    telco_db()
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = tmp_path / "store"
    models = {"candidates": ["logistic_regression"], "n_trials": 1, "cv_folds": 2}
    weak = write_spec(
        "weak.yaml",
        tracking={"uri": tracking_uri},
        models={**models, "params": {"logistic_regression": {"C": 0.0001}}},
    )
    code, output = run_cli(weak)
    assert code == 0 and "promoted v1: " in output, output
    better = write_spec("better.yaml", tracking={"uri": tracking_uri}, models=models)
    name = yaml.safe_load(better.read_text())["name"]

    survived = []
    for point in KILL_POINTS:
        code, output = run_cli(better, kill_at=point)
        assert code == -signal.SIGKILL, f"{point}: not killed (exit {code})\n{output}"
        aliases = assert_consistent(store, tracking_uri, name)
        survived.append((point, aliases["champion"]))

    code, output = run_cli(better)
    assert code == 0, output
    aliases = assert_consistent(store, tracking_uri, name)
    champion = registry(tracking_uri).get_model_version(name, aliases["champion"])
    winner = str(champion.version)
    assert champion.tags["retrainer.candidate"] == "logistic_regression"
    # the promotion killed after the alias moved was finished by a later run: tagged and audited, once
    assert champion.tags["retrainer.outcome"] == "promoted" and champion.tags["retrainer.champion_before"] == "1"
    audit = read_audit(RunStore(str(store)), name)
    promoted = [(entry["version"], entry["champion_before"]) for entry in audit if entry["action"] == "promoted"]
    assert promoted == [(1, None), (int(champion.version), 1)], audit
    assert winner != "1", "the better model never became champion"
    assert aliases.get("previous") == "1"
    # the champion only ever moved from v1 to the better model, never anywhere else
    assert {version for _, version in survived} <= {"1", winner}
    assert dict(survived)["alias:champion:before"] == "1"
    assert dict(survived)["alias:champion:after"] == winner
    # the version killed before it was validated stays registered but can never be served
    versions = registry(tracking_uri).search_model_versions(f"name = '{name}'")
    unvalidated = [str(v.version) for v in versions if v.tags.get("retrainer.validated") != "true"]
    assert unvalidated and not set(unvalidated) & set(aliases.values())


def test_kill_once_lets_the_retry_of_a_killed_process_go_past_the_point(tmp_path: Path) -> None:
    """An orchestrator retries a task in the same environment: each named point must kill only once."""
    script = "from retrainer.faults import kill_point\nkill_point('a:x')\nkill_point('b')\nprint('past both')"
    source = str(Path(retrainer.__file__).parents[1])  # the retrainer under test, not an installed one
    env = {**os.environ, KILL_AT: "a:x,b", KILL_ONCE: str(tmp_path / "kills"), "PYTHONPATH": source}
    attempts = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True) for _ in "123"]
    assert [attempt.returncode for attempt in attempts] == [-signal.SIGKILL, -signal.SIGKILL, 0]
    assert attempts[2].stdout == "past both\n"
    assert sorted(path.name for path in (tmp_path / "kills").iterdir()) == ["a_x", "b"]
