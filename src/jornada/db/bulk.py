"""Bulk writes for the ingestion hot path, straight to the DB-API cursor.

SQLAlchemy's per-row parameter processing costs more than SQLite's own
insert on the ingestion path (and its per-row result processing more than a
large read of ids: :func:`driver_rows`), so rows are converted here once, in the same
storage format SQLAlchemy uses (naive UTC ``YYYY-MM-DD HH:MM:SS.ffffff`` and
JSON text on SQLite; aware datetimes on PostgreSQL), and handed to
``executemany``. Everything else keeps using SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Executable

from jornada.db.types import utc_from_text

# naive UTC text by moment (equal moments in any zone share a key, and their text);
# ``datetime.replace`` costs more than the insert of the row it is for
_TIMES: dict[datetime, str] = {}
_TIMES_KEPT = 4096


def _default(value: Any) -> Any:
    return str(value)


def driver_rows(conn: Connection, query: Executable) -> list[Any]:
    """The rows of ``query`` as the driver returns them: tuples, no Row object, no type
    processing (on SQLite a time is its stored text). For reads of many rows of few columns."""
    result = conn.execute(query)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


class Bulk:
    """Adapts Python values and runs ``executemany`` for one dialect."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self.mark = "?" if self.sqlite else "%s"

    def time(self, value: datetime | None) -> Any:
        if value is None or not self.sqlite:
            return value
        # a batch writes the same few moments many times (its ``now``, its events' times)
        text = _TIMES.get(value)
        if text is None:
            if value.tzinfo is not UTC:
                value = value.astimezone(UTC)
            text = value.replace(tzinfo=None).isoformat(" ", "microseconds")
            if len(_TIMES) >= _TIMES_KEPT:
                _TIMES.clear()
            _TIMES[value] = text
        return text

    @staticmethod
    def json(value: Any) -> str | None:
        return None if value is None else orjson.dumps(value, default=_default).decode()

    def insert(
        self,
        conn: Connection,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        ignore_conflicts: bool = False,
    ) -> None:
        if not rows:
            return
        marks = ", ".join([self.mark] * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        if ignore_conflicts:
            sql += " ON CONFLICT DO NOTHING"
        self._executemany(conn, sql, rows)

    def update(
        self,
        conn: Connection,
        table: str,
        set_columns: Sequence[str],
        key: str,
        rows: Sequence[Sequence[Any]],
    ) -> None:
        """``UPDATE table SET c1=?, … WHERE key=?``; each row is the new values, then the key."""
        if not rows:
            return
        assignments = ", ".join(f"{c} = {self.mark}" for c in set_columns)
        self._executemany(conn, f"UPDATE {table} SET {assignments} WHERE {key} = {self.mark}", rows)

    @staticmethod
    def _cursor(conn: Connection) -> Any:
        # the DB-API connection of this very Connection: same transaction, no per-row overhead
        return conn.connection.cursor()

    def _executemany(self, conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        cursor = self._cursor(conn)
        try:
            cursor.executemany(sql, list(rows))
        finally:
            cursor.close()

    def read_time(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return utc_from_text(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @staticmethod
    def read_json(value: Any) -> Any:
        return orjson.loads(value) if isinstance(value, str | bytes) else value

    def rows(self, conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement in this dialect's paramstyle (``mark``), as the driver
        gives them: for small hot-path reads, where SQLAlchemy's per-statement work costs more
        than the query."""
        cursor = self._cursor(conn)
        try:
            cursor.execute(sql, list(params))
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def select_in(
        self,
        conn: Connection,
        table: str,
        columns: Sequence[str],
        workspace_id: str,
        key: str,
        values: Sequence[Any],
        *,
        also: tuple[str, Sequence[Any]] | None = None,
        since: tuple[str, datetime] | None = None,
    ) -> list[tuple[Any, ...]]:
        """``SELECT columns FROM table WHERE workspace_id = ? AND key IN (values)``
        [``AND also[0] IN (also[1])``] [``AND since[0] >= since[1]``, a time]."""
        if not values or (also is not None and not also[1]):
            return []
        marks = ", ".join([self.mark] * len(values))
        sql = (
            f"SELECT {', '.join(columns)} FROM {table} "
            f"WHERE workspace_id = {self.mark} AND {key} IN ({marks})"
        )
        params: list[Any] = [workspace_id, *values]
        if also is not None:
            sql += f" AND {also[0]} IN ({', '.join([self.mark] * len(also[1]))})"
            params += list(also[1])
        if since is not None:
            sql += f" AND {since[0]} >= {self.mark}"
            params.append(self.time(since[1]))
        return self.rows(conn, sql, params)

    def delete(
        self, conn: Connection, table: str, key: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """``DELETE FROM table WHERE k1 = ? AND …`` once per row of key values."""
        if rows:
            where = " AND ".join(f"{k} = {self.mark}" for k in key)
            self._executemany(conn, f"DELETE FROM {table} WHERE {where}", rows)
