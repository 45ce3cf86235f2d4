"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

#: JSON column: JSONB on PostgreSQL (indexable), JSON text on SQLite.
Json = JSON().with_variant(JSONB(), "postgresql")
#: the same, but Python None is SQL NULL, never the JSON ``null`` (what a partial index can test)
JsonOrNull = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


_NAIVE_LENGTHS = frozenset({19, 26})  # YYYY-MM-DD HH:MM:SS[.ffffff]


def utc_from_text(value: str) -> datetime:
    """A stored SQLite time as an aware UTC datetime.

    Stored times are naive UTC; appending the offset lets ``fromisoformat`` make
    them aware in one C call (``datetime.replace`` alone costs several times more).
    """
    if len(value) in _NAIVE_LENGTHS:
        return datetime.fromisoformat(value + "+00:00")
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on every database.

    SQLite has no time zone type and hands back naive values; storing naive
    UTC and re-attaching UTC on the way out keeps the rest of the code aware.
    A naive value on the way in is a bug, so it is refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQL over SQLite
            return utc_from_text(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # On SQLite, SQLAlchemy parses stored times with a regular expression, then the
    # value passes process_result_value; both are replaced by one C-speed
    # fromisoformat, reading and writing the very same text format.
    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTCDateTime column")
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            if isinstance(value, str):
                return utc_from_text(value)
            moment: datetime = value
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

        return process
