"""Models on Telco: the example spec as shipped, each candidate's CV score, the winner, its test scores.

    .venv/bin/python benchmarks/models_telco.py

Runs examples/telco_churn/pipeline.yaml (every candidate, the MLP included, threshold chosen for
F1) in a temporary store and prints, per candidate, the best CV ROC-AUC, trials completed and pruned,
and the seconds its trials took (summed); then the chosen model, its decision threshold, the test metrics
and the wall time of the run and of the tune stage. Also the machine's load, which the times depend on.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "telco_churn"
sys.path.insert(0, str(EXAMPLE))


def main() -> None:
    from setup_data import TABLE, load, telco_frame

    import retrainer

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        shutil.copy(EXAMPLE / "pipeline.yaml", directory / "pipeline.yaml")
        load(f"sqlite:///{directory / 'telco.db'}", telco_frame(), TABLE)
        spec = retrainer.load_spec(directory / "pipeline.yaml")
        spec = spec.model_copy(update={"store": str(directory / "store")})
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        result = retrainer.run(spec)
        wall = time.perf_counter() - started
        tuning = _artifact(directory / "store", "tune", "tuning.json")
        training = _artifact(directory / "store", "train", "training.json")
    print(f"\nTelco churn (7,043 rows), {spec.models.n_trials} trials per candidate, {spec.models.cv_folds}-fold CV")
    print(f"{'candidate':<20} {'cv roc_auc':>10} {'complete':>9} {'pruned':>7} {'tune s':>7}")
    for name, record in tuning["candidates"].items():
        seconds = sum(t["seconds"] or 0.0 for t in record["history"])
        counts = f"{record['n_complete']:>9} {record['n_pruned']:>7}"
        print(f"{name:<20} {record['best_value']:>10.4f} {counts} {seconds:>7.1f}")
    test = {k.removeprefix("test_"): v for k, v in result.metrics.items() if k.startswith("test_")}
    print(f"chosen: {training['candidate']} (cv {training['cv_score']:.4f}), params {training['params']}")
    print(f"decision threshold {training['decision_threshold']} ({training.get('threshold_source', 'spec')})")
    print("test: " + ", ".join(f"{k} {v:.4f}" for k, v in test.items()))
    tune = next(stage.seconds for stage in result.stages if stage.name == "tune")
    print(f"outcome {result.outcome}; run {wall:.1f} s, tune {tune:.1f} s")
    print(f"load average (1 min) before {load_before:.1f}, after {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores")


def _artifact(store: Path, stage: str, name: str) -> dict:
    import json

    (path,) = store.glob(f"cache/{stage}/*/{name}")
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
