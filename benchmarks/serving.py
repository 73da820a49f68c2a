"""Serving: p50/p99 latency and throughput of `retrainer serve` over HTTP, for single rows and batches.

    .venv/bin/python benchmarks/serving.py [--single 1000] [--batches 100] [--batch-size 100] [--max-seconds 60]

Trains a Telco churn model with the real pipeline in a temporary store (v1, champion), registers a
refit of it (v2, challenger), starts `retrainer serve` in its own process on 127.0.0.1 (10 % of
entities to the challenger, predictions logged to Parquet) and sends requests one at a time from
this process: every Telco customer in turn, as one-row requests and then as batches. Each phase
stops at its request count or after --max-seconds, whichever comes first. Prints latency
percentiles, requests/s and rows/s, and the A/B split the responses report.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "telco_churn"))


def register_two_versions(directory: Path, frame: Any) -> Path:
    """v1 from a real pipeline run (champion); v2 a refit with strong regularisation (challenger)."""
    import yaml
    from sklearn.base import clone

    import retrainer
    from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri
    from retrainer.store import RunStore
    from retrainer.target import encode_target

    spec_path = directory / "pipeline.yaml"
    spec = {
        "name": "bench-serving",
        "source": {"url": f"sqlite:///{directory / 'telco.db'}", "table": "customers"},
        "target": {"column": "churn", "positive": "Yes"},
        "id_column": "customer_id",
        "store": str(directory / "store"),
        "models": {"candidates": ["logistic_regression"], "n_trials": 1, "cv_folds": 2},
        "serving": {"challenger_share": 0.1, "prediction_log": {"path": str(directory / "predictions")}},
    }
    spec_path.write_text(yaml.safe_dump(spec))
    loaded = retrainer.load_spec(spec_path)
    result = retrainer.run(loaded)
    assert result.outcome == "promoted", result.reason
    registry = Registry(default_tracking_uri(RunStore(loaded.store)))
    columns = [name for name, _ in registry.input_schema(loaded.name, 1)]
    second = clone(registry.load_model(loaded.name, 1))
    second.steps[-1][1].set_params(C=0.001)
    second.fit(frame[columns], encode_target(frame["churn"], "Yes"))
    info = registry.log_and_register(
        loaded.name,
        experiment=loaded.name,
        model=second,
        input_example=frame[columns].head(5),
        params={"C": 0.001},
        metrics={},
        tags={},
        artifacts={},
    )
    registry.set_alias(loaded.name, "challenger", info.version)
    return spec_path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, server: subprocess.Popen[bytes], timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"retrainer serve exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server was not ready within {timeout:.0f} s")


def run_phase(client: Any, bodies: list[Any], max_seconds: float) -> tuple[list[float], list[dict[str, Any]], float]:
    """Send bodies one after another; latencies (s), every answered row, and the phase's wall time."""
    latencies, answers = [], []
    started = time.perf_counter()
    for body in bodies:
        sent = time.perf_counter()
        response = client.post("/predict", json=body)
        latencies.append(time.perf_counter() - sent)
        response.raise_for_status()
        payload = response.json()
        answers += payload.get("predictions", [payload])
        if sent - started > max_seconds:
            break
    return latencies, answers, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=1000, help="one-row requests")
    parser.add_argument("--batches", type=int, default=100, help="batch requests")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--max-seconds", type=float, default=60, help="cap on each phase")
    args = parser.parse_args()
    import httpx
    import numpy as np
    from setup_data import TABLE, load, telco_frame

    frame = telco_frame()
    rows = json.loads(frame.to_json(orient="records"))
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        load(f"sqlite:///{directory / 'telco.db'}", frame, TABLE)
        spec_path = register_two_versions(directory, frame)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "retrainer.cli", "serve", str(spec_path), "--port", str(port)]
        server = subprocess.Popen(command, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
        try:
            wait_ready(url, server)
            with httpx.Client(base_url=url, timeout=60) as client:
                run_phase(client, rows[:20], args.max_seconds)  # warm-up
                single = run_phase(client, [rows[i % len(rows)] for i in range(args.single)], args.max_seconds)
                size = args.batch_size
                batches = [
                    {"rows": [rows[(b * size + i) % len(rows)] for i in range(size)]} for b in range(args.batches)
                ]
                batch = run_phase(client, batches, args.max_seconds)
        finally:
            server.terminate()
            server.wait(timeout=60)
    load_average = os.getloadavg()[0]
    print("\nserving benchmark: Telco churn logistic regression, champion v1 + challenger v2 (10 %), over HTTP")
    print(f"one client, requests sent one at a time; 1-minute load average at the end {load_average:.1f}")
    print(f"{'requests':<18} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'rows/s':>9} {'challenger':>11}")
    for label, (latencies, answers, seconds) in (("single row", single), (f"batch of {args.batch_size}", batch)):
        p50, p99 = np.quantile(latencies, [0.5, 0.99]) * 1000
        share = sum(a["alias"] == "challenger" for a in answers) / len(answers)
        print(
            f"{label:<18} {len(latencies):>6} {p50:>8.1f} {p99:>8.1f} {len(latencies) / seconds:>8.1f} "
            f"{len(answers) / seconds:>9.0f} {share:>10.1%}"
        )


if __name__ == "__main__":
    main()
