"""Readiness figures on Telco: each candidate kind registered, then loaded and timed in a fresh process.

    .venv/bin/python benchmarks/readiness.py [logistic_regression lightgbm xgboost mlp]

Runs examples/telco_churn/pipeline.yaml once per candidate (`models.candidates: [kind]`, 2 trials),
in order, in one temporary store, with the example's metric gates left out so every kind reaches the
readiness stage. Prints what that stage measured: model size on disk, load time in a fresh process,
p50/p95 latency of one-row and of batch-of-100 requests through the serving code, peak memory, and
the one-row p95 against the champion of the moment (the kinds run before it). And the machine's load,
which the times depend on.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "telco_churn"
sys.path.insert(0, str(EXAMPLE))
KINDS = ("logistic_regression", "lightgbm", "xgboost", "mlp")


def main(kinds: list[str]) -> None:
    from setup_data import TABLE, load, telco_frame

    import retrainer

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        load(f"sqlite:///{directory / 'telco.db'}", telco_frame(), TABLE)
        base = yaml.safe_load((EXAMPLE / "pipeline.yaml").read_text())
        base["evaluation"] = {"metric": "roc_auc"}  # no gates: every kind is registered and measured
        base["promotion"] = {"min_improvement": {"metric": "roc_auc", "absolute": 0.0}}
        base["report"] = {"auto": False}
        base["store"] = str(directory / "store")
        print(f"load average (1 min) before {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores")
        header = (
            f"{'candidate':<20} {'MB':>6} {'load s':>7} {'p50 ms':>7} {'p95 ms':>7} {'b100 p50':>9} {'b100 p95':>9}"
        )
        print(header + f" {'peak MB':>8}  vs champion")
        for kind in kinds:
            spec_data = {**base, "models": {**base["models"], "candidates": [kind], "n_trials": 2}}
            path = directory / f"{kind}.yaml"
            path.write_text(yaml.safe_dump(spec_data))
            result = retrainer.run(retrainer.load_spec(path))
            record = _readiness(directory / "store", result.run_id)
            if record is None or not record.get("checked"):
                print(f"{kind:<20} not measured: {result.outcome}: {result.reason}")
                continue
            f = record["figures"]
            champion = record.get("champion") or {}
            ratio = record.get("slowdown_vs_champion")
            against = f"{ratio:.2f}x v{champion['version']}" if ratio else "(no champion)"
            cells = f"{f['model_mb']:>6.2f} {f['load_s']:>7.2f} {f['p50_ms']:>7.2f} {f['p95_ms']:>7.2f}"
            cells += f" {f['batch_p50_ms']:>9.2f} {f['batch_p95_ms']:>9.2f} {f['memory_mb']:>8.0f}"
            print(f"{kind:<20} {cells}  {against}; {result.outcome} v{record['version']}")
            for failure in record.get("failures", []):
                print(f"{'':<20} not ready: {failure}")
        print(f"load average (1 min) after {os.getloadavg()[0]:.1f}")


def _readiness(store: Path, run_id: str) -> dict | None:
    for path in (store / "runs" / run_id / "readiness" / "readiness.json", store / "runs" / run_id / "readiness.json"):
        if path.exists():
            data: dict = json.loads(path.read_text())
            return data
    return None


if __name__ == "__main__":
    main(sys.argv[1:] or list(KINDS))
