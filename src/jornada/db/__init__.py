"""Storage: the declarative base, column types and sessions shared by every package."""

from jornada.db.base import Base, WorkspaceScoped
from jornada.db.session import Database, insert_ignore
from jornada.db.types import Json, JsonOrNull, UTCDateTime

__all__ = [
    "Base",
    "Database",
    "Json",
    "JsonOrNull",
    "UTCDateTime",
    "WorkspaceScoped",
    "insert_ignore",
]
