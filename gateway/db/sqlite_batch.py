"""Group-commit statements for SQLite, executed on the raw ``sqlite3`` connection.

The writer thread spends most of a turn's database time in SQLAlchemy's per-row parameter
handling, not in SQLite. For the handful of fixed statements a write set needs, this module
renders the SQL once and converts each row with the *same* bind processors SQLAlchemy would
use (so JSON and timestamps are stored byte-for-byte as SQLAlchemy stores them and read back
through the normal store), then runs ``executemany`` on the DBAPI connection inside the
transaction SQLAlchemy opened.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Callable, Sequence

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError


class BatchStatement:
    """One INSERT or UPDATE with its parameter converters, for ``executemany``."""

    def __init__(self, sql: str, keys: Sequence[str], processors: Sequence[Callable[[Any], Any] | None]) -> None:
        self.sql = sql
        self._plan = list(zip(keys, processors))

    def rows(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        plan = self._plan
        return [tuple(p(row[k]) if p is not None else row[k] for k, p in plan) for row in rows]

    def run(self, cursor: sqlite3.Cursor, rows: Sequence[dict[str, Any]]) -> int:
        """Execute for ``rows``; return the number of rows changed (summed over the batch)."""
        params = self.rows(rows)
        try:
            cursor.executemany(self.sql, params)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(self.sql, params[:3], exc) from exc
        return cursor.rowcount


def _processors(table: Table, names: Sequence[str], dialect: Dialect) -> list[Callable[[Any], Any] | None]:
    return [table.c[name].type._cached_bind_processor(dialect) for name in names]


def insert_statement(table: Table, dialect: Dialect, *, skip: Sequence[str] = ()) -> BatchStatement:
    names = [c.name for c in table.columns if c.name not in skip]
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    return BatchStatement(sql, names, _processors(table, names, dialect))


def fenced_update_statement(table: Table, dialect: Dialect, columns: Sequence[str]) -> BatchStatement:
    """``UPDATE ... SET <columns>, version = :new_version WHERE id = :b_id AND version = :b_version``."""
    assignments = ", ".join(f"{name} = ?" for name in columns)
    sql = f"UPDATE {table.name} SET {assignments}, version = ? WHERE id = ? AND version = ?"
    keys = [*columns, "new_version", "b_id", "b_version"]
    processors = [*_processors(table, columns, dialect), None, None, None]
    return BatchStatement(sql, keys, processors)


def update_by_id_statement(table: Table, dialect: Dialect, columns: Sequence[str]) -> BatchStatement:
    """``UPDATE ... SET <columns> WHERE id = :b_id``."""
    sql = f"UPDATE {table.name} SET {', '.join(f'{name} = ?' for name in columns)} WHERE id = ?"
    return BatchStatement(sql, [*columns, "b_id"], [*_processors(table, columns, dialect), None])
