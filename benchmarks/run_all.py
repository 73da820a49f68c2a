"""Run every benchmark script in order and print each one's table: what `make bench` runs.

    .venv/bin/python benchmarks/run_all.py [overhead,extract,...]      # or: make bench BENCH=overhead,extract

Each script runs in its own process (PYTHONPATH=src, OMP_WAIT_POLICY=PASSIVE) with its default
arguments, or once per argument list in RUNS (model_quality: its default binary datasets, then the
multiclass and regression ones); a script not in this checkout yet is skipped with a message. The
issue-8 rows first, then the older benchmarks. Exits non-zero if any script failed (the others still run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = (
    "cli_startup",  # retrainer --help ≤ 0.5 s
    "rerun",  # unchanged re-run ≤ 1.0 s and ≤ dvc repro
    "overhead",  # whole pipeline ≤ 1.10 x a hand-written script, same ROC-AUC
    "extract",  # PostgreSQL extract ≥ 3 x pandas.read_sql
    "parallel_tuning",  # 2 workers ≥ 1.6 x the trials/minute of 1
    "scale",  # 10 M rows (issue 8 scale row)
    "model_quality",  # retrainer vs FLAML at equal time budgets
    "bootstrap",
    "models_telco",
    "orchestration",
    "serving",
    "forecast",  # task: forecast vs a hand-written statsforecast backtest (issue 20)
    "readiness",  # each Telco candidate loaded and timed in a fresh process (issue 26)
)
# scripts run more than once, or with arguments: one argument list per run ((): its defaults)
RUNS: dict[str, tuple[tuple[str, ...], ...]] = {
    "model_quality": (
        (),  # binary: telco, german, adult, flights at 60 and 300 s, 3 seeds
        ("--datasets", "routing,penguins,ames,diamonds", "--budgets", "60", "--seeds", "3", "--parallel"),
    ),
}


def main() -> None:
    wanted = [name.strip().removesuffix(".py") for arg in sys.argv[1:] for name in arg.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in ORDER]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_WAIT_POLICY": "PASSIVE"}
    failed = []
    for name in [name for name in ORDER if not wanted or name in wanted]:
        script = ROOT / "benchmarks" / f"{name}.py"
        for args in RUNS.get(name, ((),)):
            run = " ".join((name, *args))  # the name alone for a run with the defaults, as before
            command = " ".join((f"{name}.py", *args))
            print(f"\n=== benchmarks/{command} " + "=" * max(0, 60 - len(run)), flush=True)
            if not script.exists():
                print(f"skipped: benchmarks/{name}.py is not in this checkout", flush=True)
                break
            started = time.perf_counter()
            code = subprocess.run([sys.executable, str(script), *args], cwd=ROOT, env=env, check=False).returncode
            print(f"--- {run}: exit {code}, {time.perf_counter() - started:.0f} s", flush=True)
            if code:
                failed.append(run)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
