"""Is a SQLite file a healthy database? Asked of the local MLflow store before a run does any work.

A damaged `mlflow.db` used to surface deep in register, after minutes of training, as SQLAlchemy's
"file is not a database" with no file name. Standard library only, read-only, and quick: SQLite's
`quick_check` reads every page once but checks no index against its table.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def sqlite_damage(path: Path) -> str | None:
    """What is wrong with the SQLite file at `path` ("is damaged: ...", "is not writable (...)"); None when it is
    fine or not there yet."""
    if not path.exists():
        return None  # MLflow creates it on first use
    if path.is_dir():
        return "is a directory, not a SQLite file"
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as error:
        return f"cannot be opened ({error})"
    try:
        rows = connection.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.OperationalError as error:
        if "locked" in str(error):  # a writer holds it: busy, not damaged
            return None
        return f"is damaged: {error}"
    except sqlite3.DatabaseError as error:
        return f"is damaged: {error}"
    finally:
        connection.close()
    verdict = rows[0][0] if rows else "ok"
    return f"is damaged: {verdict}" if verdict != "ok" else _unwritable(path)


def _unwritable(path: Path) -> str | None:
    """Why SQLite cannot write to `path` (read-only file system, immutable file, permissions), else None.

    A table is created and rolled back under the write lock, so nothing stays: SQLite opens a file it
    cannot write read-only without a word, and only a write statement tells. A writer holding the lock
    means the file is writable, just busy.
    """
    try:
        connection = sqlite3.connect(path, timeout=1, isolation_level=None)
    except sqlite3.Error as error:
        return f"cannot be opened for writing ({error})"
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("CREATE TABLE main.retrainer_write_probe (x INTEGER)")
        connection.execute("ROLLBACK")
    except sqlite3.OperationalError as error:
        return None if "locked" in str(error) else f"is not writable ({error})"
    finally:
        connection.close()
    return None


def sqlite_fix(problem: str) -> str:
    """How to fix what `sqlite_damage` found."""
    if problem.startswith("is not writable"):
        return "make the file and its folder writable (read-only mount? immutable file?), or set tracking.uri"
    return "restore it from a backup, or move it aside to start a new registry (its versions are lost)"
