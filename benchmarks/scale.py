"""Scale: the NYC flights replicated to 10 M rows x 30 columns, end to end from Parquet and PostgreSQL.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/scale.py [--rows 10000000] [--sources parquet,postgres]
        [--url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--workdir /tmp/retrainer-scale]

Data: the example pipeline's join (flights ⋈ weather ⋈ planes, 17 columns, the 327,346 flights that
arrived) plus 13 columns known before departure (date parts, scheduled times, flight number, tail
number, wind gust, the plane's maker, model, engine, engines and type, the airline's name): 30
columns. It is repeated until `--rows`; each copy gets new flight ids, so no row repeats another.
Written once to a Parquet file and COPYed into a PostgreSQL table (dropped at the end).

The pipeline (a cheap spec: LightGBM, 2 trials, 2 folds, one thread per fit; stratified split; drift
off since there is no champion yet) runs once per source in a child process with a fresh temporary
store. Categories are encoded as numbers (`features.encoding: ordinal`), as one would for 10 M rows
and a tree model: one-hot encoding makes a dense float64 column per category (about 200 here: 12 GB
for 8 M training rows), and LightGBM splits on category numbers as well as on indicator columns.
Logistic regression is left out for the same reason: a linear model on category numbers is
mis-specified, and at 1 M rows its solver did not converge in 2,000 iterations (1,183 s of tuning).
The child records its peak RSS per stage (Linux: VmHWM, reset
when each stage starts through /proc/self/clear_refs); the run's peak is the largest of them (the
reset also resets getrusage's ru_maxrss, so that cannot be used). The
table printed at the end: source, rows, columns, the data's in-memory size (the frame the stages
read: `memory_usage(deep=True)`), peak RSS, their ratio (the target is <= 3) and seconds per stage.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _examples import example_setup  # noqa: E402

EXTRA_COLUMNS = 13


def base_join() -> Any:
    """The example's 17-column join, plus 13 more columns known before departure: 30 columns."""
    import pandas as pd

    frames = example_setup("flights").flights_frames()
    flights = frames["flights"].loc[frames["flights"]["arr_delay"].notna()]
    weather_columns = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]
    weather = frames["weather"][["origin", "time_hour", *weather_columns]]
    planes = frames["planes"].rename(columns={"year": "plane_year", "type": "plane_type"})
    airlines = frames["airlines"].rename(columns={"name": "airline_name"})
    joined = (
        flights.merge(weather, on=["origin", "time_hour"], how="left")
        .merge(planes, on="tailnum", how="left")
        .merge(airlines, on="carrier", how="left")
        .sort_values("flight_id", kind="stable")
    )
    frame = pd.DataFrame(
        {
            "flight_id": joined["flight_id"],
            "time_hour": joined["time_hour"],
            "carrier": joined["carrier"],
            "origin": joined["origin"],
            "dest": joined["dest"],
            "distance": joined["distance"].astype("float64"),
            **{c: joined[c] for c in ("temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure")},
            "visib": joined["visib"],
            "plane_age": 2013 - joined["plane_year"],
            "seats": joined["seats"],
            "late": (joined["arr_delay"] > 15).astype("int64"),
            # the 13 extra columns
            "month": joined["month"],
            "day": joined["day"],
            "sched_dep_time": joined["sched_dep_time"],
            "sched_arr_time": joined["sched_arr_time"],
            "flight": joined["flight"],
            "tailnum": joined["tailnum"],
            "wind_gust": joined["wind_gust"],
            "manufacturer": joined["manufacturer"],
            "model": joined["model"],
            "engine": joined["engine"],
            "engines": joined["engines"],
            "plane_type": joined["plane_type"],
            "airline_name": joined["airline_name"],
        }
    ).reset_index(drop=True)
    assert frame.shape[1] == 17 + EXTRA_COLUMNS
    return frame


def replicate(base: Any, rows: int) -> Any:
    """`rows` rows: copy k of the join has flight ids after copy k-1's (so no row repeats another)."""
    import pandas as pd

    copies, start, k, id_step = [], 0, 0, int(base["flight_id"].max())
    while start < rows:
        part = base.iloc[: rows - start].copy()
        part["flight_id"] = part["flight_id"] + k * id_step
        copies.append(part)
        start, k = start + len(part), k + 1
    return pd.concat(copies, ignore_index=True)


def write_postgres(frame: Any, url: str, table: str, chunk: int = 500_000) -> None:
    """The frame into a new table through COPY, `chunk` rows of CSV at a time."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            frame.head(0).to_sql(table, connection, if_exists="replace", index=False)
            raw = connection.connection.driver_connection
            with raw.cursor().copy(f"COPY {table} FROM STDIN (FORMAT CSV)") as copy:
                for start in range(0, len(frame), chunk):
                    buffer = io.StringIO()
                    frame.iloc[start : start + chunk].to_csv(buffer, index=False, header=False)
                    copy.write(buffer.getvalue())
            connection.exec_driver_sql(f"ANALYZE {table}")
    finally:
        engine.dispose()


def drop_table(url: str, table: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    finally:
        engine.dispose()


def spec_for(source: dict[str, Any], store: Path) -> dict[str, Any]:
    return {
        "name": "flights-scale",
        "source": source,
        "target": {"column": "late", "positive": 1},
        "id_column": "flight_id",
        "time_column": "time_hour",
        "store": str(store),
        "validation": {"min_rows": 1000, "max_null_fraction": 0.9},
        "drift": {"policy": "off"},
        "features": {
            "derived": [
                {"name": "hour", "date_part": "hour", "column": "time_hour"},
                {"name": "dayofweek", "date_part": "dayofweek", "column": "time_hour"},
            ],
            "max_categories": 30,
            "encoding": "ordinal",
        },
        "models": {"candidates": ["lightgbm"], "n_trials": 2, "cv_folds": 2, "n_jobs": 1},
        "evaluation": {"metric": "roc_auc", "thresholds": {"roc_auc": 0.55}},
        "report": {"auto": False},
    }


CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[3])
import retrainer
from retrainer.pipeline import SilentReporter
from retrainer.spec import spec_from_dict

def kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])

class PeakPerStage(SilentReporter):
    # Peak RSS of each stage: VmHWM read when it ends, then reset to the current RSS for the next
    def __init__(self):
        self.peaks = {}
    def stage_started(self, stage):
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    def stage_finished(self, stage, status, seconds, summary):
        self.peaks[stage] = kib("VmHWM:") / 1024

spec = spec_from_dict(json.loads(sys.argv[1]))
reporter = PeakPerStage()
baseline = kib("VmRSS:") / 1024
started = time.perf_counter()
result = retrainer.run(spec, reporter=reporter, until=sys.argv[4] or None)
out = {
    "outcome": result.outcome, "reason": result.reason, "seconds": time.perf_counter() - started,
    "stages": {s.name: s.seconds for s in result.stages}, "stage_peak_mib": reporter.peaks,
    # clear_refs also resets what getrusage reports: the run's peak is the largest stage peak
    "baseline_mib": baseline, "max_rss_mib": max([baseline, *reporter.peaks.values()]),
    "metrics": {k: v for k, v in result.metrics.items() if k in ("roc_auc", "rows")},
}
open(sys.argv[2], "w").write(json.dumps(out))
"""


def run_child(spec: dict[str, Any], out: Path, until: str | None) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_WAIT_POLICY": "PASSIVE"}
    started = time.perf_counter()
    command = [sys.executable, "-c", CHILD, json.dumps(spec), str(out), str(ROOT / "src"), until or ""]
    subprocess.run(command, env=env, check=True)
    record: dict[str, Any] = json.loads(out.read_text())
    record["wall_s"] = time.perf_counter() - started
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--sources", default="parquet,postgres")
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workdir", default="/tmp/retrainer-scale")
    parser.add_argument("--until", help="stop after this stage (e.g. leakage: the data stages without tuning)")
    args = parser.parse_args()
    sources = args.sources.split(",")

    import pandas as pd

    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.perf_counter()
    frame = replicate(base_join(), args.rows)
    parquet = work / "flights.parquet"
    frame.to_parquet(parquet, index=False, row_group_size=500_000)
    table = f"flights_scale_{secrets.token_hex(3)}"
    if "postgres" in sources:
        write_postgres(frame, args.url, table)
    print(f"data: {len(frame):,} rows x {frame.shape[1]} columns, made in {time.perf_counter() - started:.0f}s")
    del frame
    # the in-memory size of the data: the frame the stages read back from the run store
    loaded = pd.read_parquet(parquet)
    rows, columns, size_mib = len(loaded), loaded.shape[1], loaded.memory_usage(deep=True).sum() / 2**20
    del loaded

    results: dict[str, dict[str, Any]] = {}
    try:
        for name in sources:
            source = {"path": str(parquet)} if name == "parquet" else {"url": args.url, "table": table}
            print(f"running the pipeline on {name} ...", flush=True)
            spec = spec_for(source, work / f"store-{name}")
            results[name] = run_child(spec, work / f"{name}.json", args.until)
            print(json.dumps(results[name], indent=1), flush=True)
    finally:
        if "postgres" in sources:
            drop_table(args.url, table)
    print_table(results, rows, columns, size_mib)
    print(f"load average (1, 5, 15 min): {os.getloadavg()}; cpus: {os.cpu_count()}")


def print_table(results: dict[str, dict[str, Any]], rows: int, columns: int, size_mib: float) -> None:
    stages = list(next(iter(results.values()))["stages"]) if results else []
    print(f"\n{'source':<9} {'rows':>11} {'cols':>4} {'data MiB':>9} {'peak RSS MiB':>12} {'ratio':>6} {'outcome':>9}")
    for name, record in results.items():
        ratio = record["max_rss_mib"] / size_mib
        print(
            f"{name:<9} {rows:>11,} {columns:>4} {size_mib:>9.0f} {record['max_rss_mib']:>12.0f} {ratio:>6.2f}"
            f" {record['outcome']:>9}"
        )
    print(f"\n{'stage':<10}" + "".join(f" {name + ' s':>13} {'peak MiB':>9}" for name in results))
    for stage in stages:
        cells = "".join(
            f" {record['stages'].get(stage, 0):>13.1f} {record['stage_peak_mib'].get(stage, 0):>9.0f}"
            for record in results.values()
        )
        print(f"{stage:<10}{cells}")
    print(f"{'total':<10}" + "".join(f" {record['seconds']:>13.1f} {'':>9}" for record in results.values()))


if __name__ == "__main__":
    main()
