"""Overhead: `retrainer run` on Telco churn against the same retraining written by hand, in one run.

    .venv/bin/python benchmarks/overhead.py [--repeat 3] [--trials 10]

Three sides, each a fresh process in a fresh temporary store (MLflow in SQLite), taking turns
(the order rotates every repeat, so a burst of load on the machine hits each side alike):

- `handwritten`: benchmarks/handwritten_telco.py (pandas, scikit-learn, XGBoost, LightGBM, Optuna
  TPE, stratified 3-fold CV, MLflow log + register + `champion` alias);
- `retrainer (same steps)`: `retrainer run` with the checks the script does not do turned off
  (drift, the leakage guard, readiness's load of the version in a fresh process, the HTML report);
- `retrainer (default)`: `retrainer run` with retrainer's defaults: also validation gates, drift,
  leakage guard, SHAP explanation, the champion comparison with a bootstrap CI, readiness, the HTML report.

All three use the same candidates, search spaces, trials, seed and stratified split, so they pick the
same model: the table shows each side's median wall and CPU time, the ratio to the script and the
test ROC-AUC; then the default run's median seconds per stage, which is where any extra time goes.
Target (issue 8): retrainer ≤ 1.10 x the script, test ROC-AUC within ± 0.002.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "telco_churn"))
SIDES = ("handwritten", "retrainer (same steps)", "retrainer (default)")
SAME_STEPS = {
    "drift": {"policy": "off"},
    "leakage": {"max_single_feature_auc": None, "max_auc_lead": None},
    "readiness": {"enabled": False},
    "report": {"auto": False},
}


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_side(side: str, db: Path, directory: Path, trials: int) -> dict[str, Any]:
    """Run one side in `directory`; its wall and CPU seconds, test ROC-AUC and (retrainer) stage times."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_WAIT_POLICY": "PASSIVE"}
    if side == "handwritten":
        command = [sys.executable, str(ROOT / "benchmarks" / "handwritten_telco.py"), "--db", str(db)]
        command += ["--tracking", f"sqlite:///{directory / 'mlflow.db'}", "--trials", str(trials)]
    else:
        spec: dict[str, Any] = {
            "name": "telco-overhead",
            "source": {"url": f"sqlite:///{db}", "query": "SELECT * FROM customers"},
            "target": {"column": "churn", "positive": "Yes"},
            "id_column": "customer_id",
            "store": str(directory / "store"),
            "models": {"n_trials": trials},
        }
        if side == "retrainer (same steps)":
            spec.update(SAME_STEPS)
        (directory / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        command = [sys.executable, "-m", "retrainer.cli", "run", str(directory / "pipeline.yaml"), "--json"]
    cpu = child_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{side} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1] if side == "handwritten" else done.stdout)
    if side == "handwritten":
        auc, candidate, stages = result["test_roc_auc"], result["candidate"], {}
    else:
        auc = result["metrics"]["test_roc_auc"]
        candidate = result["stages"][[s["name"] for s in result["stages"]].index("train")]["summary"].split()[0]
        stages = {stage["name"]: stage["seconds"] for stage in result["stages"]}
    return {"wall": wall, "cpu": child_cpu() - cpu, "auc": auc, "candidate": candidate, "stages": stages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    from setup_data import TABLE, load, telco_frame

    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="retrainer-overhead-") as tmp:
        db = Path(tmp) / "telco.db"
        load(f"sqlite:///{db}", telco_frame(), TABLE)
        for repeat in range(args.repeat):
            order = SIDES[repeat % len(SIDES) :] + SIDES[: repeat % len(SIDES)]
            for side in order:
                with tempfile.TemporaryDirectory(dir=tmp) as directory:
                    runs[side].append(run_side(side, db, Path(directory), args.trials))
                last = runs[side][-1]
                print(f"  repeat {repeat + 1} {side:<24} {last['wall']:6.1f} s  roc_auc {last['auc']:.4f}", flush=True)
    load_after = os.getloadavg()

    base_wall = statistics.median(r["wall"] for r in runs["handwritten"])
    base_auc = statistics.median(r["auc"] for r in runs["handwritten"])
    print(
        f"\nOverhead, Telco churn (7,043 rows): 4 candidates x {args.trials} trials, 3-fold CV, median of {args.repeat}"
    )
    print(f"{'side':<24} {'wall s':>7} {'cpu s':>7} {'x script':>9} {'test roc_auc':>13} {'Δ auc':>8}  model")
    for side, results in runs.items():
        wall = statistics.median(r["wall"] for r in results)
        cpu = statistics.median(r["cpu"] for r in results)
        auc = statistics.median(r["auc"] for r in results)
        models = ",".join(sorted({r["candidate"] for r in results}))
        row = f"{side:<24} {wall:>7.1f} {cpu:>7.1f} {wall / base_wall:>8.2f}x {auc:>13.4f} {auc - base_auc:>+8.4f}"
        print(f"{row}  {models}")
    for side in SIDES[1:]:
        ratio = statistics.median(r["wall"] for r in runs[side]) / base_wall
        same = all(abs(r["auc"] - base_auc) <= 0.002 for r in runs[side])
        verdict = "PASS" if ratio <= 1.10 and same else "FAIL"
        print(f"{side}: {ratio:.2f}x the script (target ≤ 1.10x), roc_auc within ±0.002: {same} -> {verdict}")
    print("\nretrainer (default), median seconds per stage (the rest is start-up and imports):")
    names = list(runs["retrainer (default)"][0]["stages"])
    print(
        "  "
        + ", ".join(f"{n} {statistics.median(r['stages'][n] for r in runs['retrainer (default)']):.1f}" for n in names)
    )
    print(
        f"load average (1, 5, 15 min) before {tuple(round(x, 1) for x in load_before)}, "
        f"after {tuple(round(x, 1) for x in load_after)}; {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
