"""Parallel tuning: trials per minute with 1 and 2 worker processes on one study, same trials, same data.

    .venv/bin/python benchmarks/parallel_tuning.py [--trials 12]

Runs the real pipeline on the Telco churn data (examples/telco_churn) in a temporary store, once per
worker count, and prints the tune stage's wall time, trials per minute and the speed-up. Both sides
run in one invocation, one after the other, so they see the same machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "telco_churn"))


def tune_seconds(workers: int, trials: int, directory: Path) -> float:
    import retrainer
    from retrainer.spec import spec_from_dict

    spec = spec_from_dict(
        {
            "name": f"bench-workers-{workers}",
            "source": {"url": f"sqlite:///{directory / 'telco.db'}", "table": "customers"},
            "target": {"column": "churn", "positive": "Yes"},
            "id_column": "customer_id",
            "store": str(directory / f"store-{workers}"),
            "models": {"candidates": ["random_forest"], "n_trials": trials, "cv_folds": 3, "workers": workers},
        }
    )
    result = retrainer.run(spec)
    return next(stage.seconds for stage in result.stages if stage.name == "tune")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12)
    args = parser.parse_args()
    from setup_data import TABLE, load, telco_frame

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        load(f"sqlite:///{directory / 'telco.db'}", telco_frame(), TABLE)
        rows = []
        for workers in (1, 2):
            seconds = tune_seconds(workers, args.trials, directory)
            rows.append((workers, seconds, args.trials / seconds * 60))
    print(f"\nparallel tuning, random_forest, {args.trials} trials, 3-fold CV, Telco churn (7,043 rows)")
    print(f"{'workers':>8} {'tune s':>8} {'trials/min':>11}")
    for workers, seconds, per_minute in rows:
        print(f"{workers:>8} {seconds:>8.1f} {per_minute:>11.1f}")
    speed_up = rows[1][2] / rows[0][2]
    print(f"speed-up of 2 workers over 1: {speed_up:.2f}x (target >= 1.6x) -> {'PASS' if speed_up >= 1.6 else 'FAIL'}")
    after = os.getloadavg()
    print(f"load average (1 min) before {load_before[0]:.1f}, after {after[0]:.1f}; {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
