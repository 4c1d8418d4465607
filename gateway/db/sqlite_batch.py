"""Group-commit statements for SQLite, executed on the raw ``sqlite3`` connection.

The writer thread spends most of a turn's database time in SQLAlchemy's per-row parameter
handling, not in SQLite. For the handful of fixed statements a write set needs, this module
renders the SQL once and converts each row with the *same* bind processors SQLAlchemy would
use (so JSON and timestamps are stored byte-for-byte as SQLAlchemy stores them and read back
through the normal store), then runs multi-row statements on the DBAPI connection inside the
transaction SQLAlchemy opened.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from operator import itemgetter
from typing import Any, Callable, Sequence

from sqlalchemy import DateTime, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError

from gateway.db.models import UtcDateTime


# Rows per statement: one multi-row statement is one sqlite3_step, i.e. one release and
# re-acquisition of the GIL by the writer thread instead of one per row (each of which can wait
# for the event loop's thread to yield the GIL). Well below SQLite's 32766-parameter limit.
ROWS_PER_STATEMENT = 200


class BatchStatement:
    """One INSERT or UPDATE for many rows: ``head`` + one ``(?, ...)`` group per row + ``tail``."""

    def __init__(
        self, head: str, tail: str, keys: Sequence[str], processors: Sequence[Callable[[Any], Any] | None]
    ) -> None:
        self._head, self._tail = head, tail
        self._group = "(" + ", ".join("?" * len(keys)) + ")"
        # A row's values in one C call, then only the columns that have a processor converted (most have none).
        self._values: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            itemgetter(*keys) if len(keys) > 1 else lambda row, key=keys[0]: (row[key],))
        self._convert = [(index, process) for index, process in enumerate(processors) if process is not None]
        self._sql: dict[int, str] = {}

    def sql(self, rows: int) -> str:
        text = self._sql.get(rows)
        if text is None:
            text = self._sql[rows] = self._head + ", ".join([self._group] * rows) + self._tail
        return text

    def run(self, cursor: sqlite3.Cursor, rows: Sequence[dict[str, Any]]) -> int:
        """Execute for ``rows``; return the number of rows changed."""
        values, convert = self._values, self._convert
        changed = 0
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[start : start + ROWS_PER_STATEMENT]
            params: list[Any] = []
            for row in chunk:
                row_values = list(values(row))
                for index, process in convert:
                    row_values[index] = process(row_values[index])
                params += row_values
            sql = self.sql(len(chunk))
            try:
                cursor.execute(sql, params)
            except sqlite3.IntegrityError as exc:
                raise IntegrityError(sql[:200], params[:20], exc) from exc
            changed += cursor.rowcount
        return changed


def _processors(table: Table, names: Sequence[str], dialect: Dialect) -> list[Callable[[Any], Any] | None]:
    processors = []
    for name in names:
        column_type = table.c[name].type
        process = column_type._cached_bind_processor(dialect)
        if isinstance(column_type, UtcDateTime):
            process = _utc_text_shared
        elif process is not None and isinstance(getattr(column_type, "impl_instance", column_type), DateTime):
            process = _same_as_last(process)
        processors.append(process)
    return processors


def utc_text(value: datetime | None) -> str | None:
    """A :class:`UtcDateTime` as SQLAlchemy stores it on SQLite (naive UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``),
    in one call instead of the type decorator's conversion followed by the dialect's ``%``-formatting."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass an aware datetime (UTC)")
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


_UTC_TEXTS: dict[datetime, str] = {}  # the timestamps of the transactions being written -> their text
_UTC_TEXTS_MAX = 1024


def _utc_text_shared(value: datetime | None) -> str | None:
    """:func:`utc_text`, formatting each timestamp once for all columns and statements: a turn's conversation
    update and its messages share one ``now`` but are written by different statements. Only the writer calls it,
    one transaction at a time (see ``Database.run_write``); the table is emptied when it fills."""
    if value is None:
        return None
    text = _UTC_TEXTS.get(value)
    if text is None:
        if len(_UTC_TEXTS) >= _UTC_TEXTS_MAX:
            _UTC_TEXTS.clear()
        text = _UTC_TEXTS[value] = utc_text(value)  # type: ignore[assignment]
    return text


def _same_as_last(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` that reuses its last result for the very same (immutable) value: the rows of a
    turn share one timestamp object, which SQLAlchemy's processor would format again for each.
    Only the writer calls it, one transaction at a time (see ``Database.run_write``)."""
    last: list[Any] = [None, None]

    def cached(value: Any) -> Any:
        if value is not None and value is last[0]:
            return last[1]
        result = process(value)
        last[0], last[1] = value, result
        return result

    return cached


def insert_statement(table: Table, dialect: Dialect, *, skip: Sequence[str] = ()) -> BatchStatement:
    names = [c.name for c in table.columns if c.name not in skip]
    return BatchStatement(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ", "", names,
                          _processors(table, names, dialect))


def fenced_update_statement(table: Table, dialect: Dialect, columns: Sequence[str]) -> BatchStatement:
    """``UPDATE ... SET <columns>, version = :new_version WHERE id = :b_id AND version = :b_version``, many rows
    at once through ``UPDATE ... FROM (VALUES ...)``; a row whose version moved on matches nothing."""
    keys = [*columns, "new_version", "b_id", "b_version"]
    values = {key: f"v.column{i}" for i, key in enumerate(keys, start=1)}
    assignments = ", ".join(f"{name} = {values[name]}" for name in [*columns])
    head = f"UPDATE {table.name} SET {assignments}, version = {values['new_version']} FROM (VALUES "
    tail = f") AS v WHERE {table.name}.id = {values['b_id']} AND {table.name}.version = {values['b_version']}"
    return BatchStatement(head, tail, keys, [*_processors(table, columns, dialect), None, None, None])


def update_by_id_statement(table: Table, dialect: Dialect, columns: Sequence[str]) -> BatchStatement:
    """``UPDATE ... SET <columns> WHERE id = :b_id`` for many rows."""
    keys = [*columns, "b_id"]
    values = {key: f"v.column{i}" for i, key in enumerate(keys, start=1)}
    head = f"UPDATE {table.name} SET {', '.join(f'{c} = {values[c]}' for c in columns)} FROM (VALUES "
    tail = f") AS v WHERE {table.name}.id = {values['b_id']}"
    return BatchStatement(head, tail, keys, [*_processors(table, columns, dialect), None])
