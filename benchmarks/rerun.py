"""Unchanged re-run: `retrainer run` on data that did not change, against `dvc repro` and the script.

    .venv/bin/python benchmarks/rerun.py [--repeat 5] [--trials 2]

In a temporary git + DVC repository holding the Telco churn SQLite file and a spec (the default
candidates, `--trials` each), the pipeline runs once; then, alternating, `--repeat` times each:

- `retrainer run spec.yaml`: every stage is a cache hit (the source is fingerprinted with one
  aggregate query), the model is identical to the champion, nothing is registered;
- `dvc repro` on the pipeline `retrainer dvc export` wrote: DVC hashes the deps and finds nothing
  to do;
- benchmarks/handwritten_telco.py, which has no cache and always retrains (run `min(2, repeat)`
  times: it takes a minute).

Each is a fresh process; the table gives the median wall time, the median CPU time (less sensitive
to the other work on the machine) and the machine's load. Target (issue 8): ≤ 1.0 s and not slower
than `dvc repro`.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "telco_churn"))


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of one process (CPU: user + system of it and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--trials", type=int, default=2)
    args = parser.parse_args()
    from setup_data import TABLE, load, telco_frame

    bin_dir = Path(sys.executable).parent
    dvc = shutil.which("dvc", path=str(bin_dir)) or shutil.which("dvc")
    if dvc is None:
        raise SystemExit("dvc is not installed (it is in requirements/constraints.txt)")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "OMP_WAIT_POLICY": "PASSIVE",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # dvc's stages call `retrainer`
    }
    retrainer = [sys.executable, "-m", "retrainer.cli"]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="retrainer-rerun-") as tmp:
        root = Path(tmp)
        load(f"sqlite:///{root / 'telco.db'}", telco_frame(), TABLE)
        spec = {
            "name": "telco-rerun",
            "source": {"url": "sqlite:///telco.db", "query": "SELECT * FROM customers"},
            "target": {"column": "churn", "positive": "Yes"},
            "id_column": "customer_id",
            "store": "store",
            "models": {"n_trials": args.trials},
        }
        (root / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        (root / ".gitignore").write_text("/store/\n/telco.db\n/mlflow*\n")
        for command in (["git", "init", "-q"], [dvc, "init", "-q"]):
            timed(command, root, env)
        timed([*retrainer, "dvc", "export", "spec.yaml", "--out", "."], root, env)
        first, _, _ = timed([*retrainer, "run", "spec.yaml"], root, env)
        dvc_first, _, _ = timed([dvc, "repro"], root, env)  # DVC records its lock file: later repros are no-ops
        print(f"first retrainer run {first:.1f} s; first dvc repro {dvc_first:.1f} s")

        sides: dict[str, list[tuple[float, float]]] = {"retrainer run (unchanged)": [], "dvc repro (no-op)": []}
        sides["handwritten script (always retrains)"] = []
        for repeat in range(args.repeat):
            wall, cpu, out = timed([*retrainer, "run", "spec.yaml", "--json"], root, env)
            assert '"outcome": "unchanged"' in out, out[:500]
            sides["retrainer run (unchanged)"].append((wall, cpu))
            wall, cpu, out = timed([dvc, "repro"], root, env)
            assert "Running stage" not in out, out[:2000]
            sides["dvc repro (no-op)"].append((wall, cpu))
            if repeat < min(2, args.repeat):
                with tempfile.TemporaryDirectory(dir=root) as scratch:
                    script = [sys.executable, str(ROOT / "benchmarks" / "handwritten_telco.py"), "--db", "telco.db"]
                    script += ["--tracking", f"sqlite:///{scratch}/mlflow.db", "--trials", str(args.trials)]
                    sides["handwritten script (always retrains)"].append(timed(script, root, env)[:2])
    load_after = os.getloadavg()

    print(f"\nUnchanged re-run, Telco churn; median of {args.repeat} (script: {min(2, args.repeat)})")
    print(f"{'command':<38} {'wall s':>7} {'cpu s':>7} {'runs':>5}")
    median: dict[str, float] = {}
    for name, values in sides.items():
        median[name] = statistics.median(w for w, _ in values)
        print(f"{name:<38} {median[name]:>7.2f} {statistics.median(c for _, c in values):>7.2f} {len(values):>5}")
    ours, theirs = median["retrainer run (unchanged)"], median["dvc repro (no-op)"]
    verdict = "PASS" if ours <= 1.0 and ours <= theirs else "FAIL"
    print(f"retrainer / dvc repro: {ours / theirs:.2f}x; target ≤ 1.0 s and ≤ dvc repro -> {verdict}")
    print(
        f"load average (1, 5, 15 min) before {tuple(round(x, 1) for x in load_before)}, "
        f"after {tuple(round(x, 1) for x in load_after)}; {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
