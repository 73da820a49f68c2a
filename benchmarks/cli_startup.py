"""CLI start-up: wall time of `retrainer --help` in a fresh process, against the bare interpreter.

    .venv/bin/python benchmarks/cli_startup.py [--repeat 9]

Runs, alternating, `python -c pass` (the floor no CLI can beat) and `python -m retrainer.cli --help`,
`--repeat` times each, and prints the median and minimum wall time and the median CPU time, and the
machine's load. The CLI imports its heavy libraries (pandas, scikit-learn, MLflow...) only inside
the commands that use them, so `--help` pays for Typer, Rich and the spec module only.
Target (issue 8): median ≤ 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, capture_output=True, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "retrainer --help": [sys.executable, "-m", "retrainer.cli", "--help"],
    }
    load_before = os.getloadavg()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, command in commands.items():
            times[name].append(timed(command, env))
    print(f"\nCLI start-up, median of {args.repeat} fresh processes")
    print(f"{'command':<18} {'median s':>9} {'min s':>7} {'cpu s':>7}")
    for name, values in times.items():
        walls = [w for w, _ in values]
        cpu = statistics.median(c for _, c in values)
        print(f"{name:<18} {statistics.median(walls):>9.3f} {min(walls):>7.3f} {cpu:>7.3f}")
    median = statistics.median(w for w, _ in times["retrainer --help"])
    print(f"retrainer --help: {median:.3f} s (target ≤ 0.5 s) -> {'PASS' if median <= 0.5 else 'FAIL'}")
    print(f"load average (1 min) before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
