"""Declarative base with a naming convention, so migrations get stable constraint names."""

from __future__ import annotations

from sqlalchemy import ForeignKey, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class WorkspaceScoped:
    """Every business row belongs to exactly one workspace; queries always filter on it."""

    @declared_attr
    def workspace_id(cls) -> Mapped[str]:  # noqa: N805 - declared_attr receives the class
        return mapped_column(
            String(26), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
        )
