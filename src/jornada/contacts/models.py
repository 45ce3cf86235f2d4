"""Contact profiles, their identities, consent history, merges and orders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, PrimaryKeyConstraint, String, text
from sqlalchemy.orm import Mapped, mapped_column

from jornada.db import Base, Json, JsonOrNull, UTCDateTime, WorkspaceScoped


class Contact(WorkspaceScoped, Base):
    """A person, known or anonymous, with traits, consent and commerce facts kept current.

    Money is stored in integer cents of ``currency`` so sums and comparisons are
    exact on every database. A merged contact keeps its row with
    ``merged_into_id`` set, so old ids still resolve.
    """

    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_ws_email", "workspace_id", "email"),
        Index("ix_contacts_ws_phone", "workspace_id", "phone"),
        Index("ix_contacts_ws_user", "workspace_id", "user_id"),
        # without it SQLite answers "workspace_id = ? AND id IN (…)" by scanning the workspace
        Index("ix_contacts_ws_id", "workspace_id", "id", unique=True),
        # segments on orders, spend and recency read only these: answered from the index
        Index(
            "ix_contacts_facts",
            "workspace_id",
            "merged_into_id",
            "orders_count",
            "last_order_at",
            "total_spent_cents",
            "id",
        ),
        # customers in recency and in spend order: RFM bounds by rank, with no sort
        # (audience.rfm.ranked_boundaries), and the R = 5 cells from the first index alone
        Index(
            "ix_contacts_recency",
            "workspace_id",
            "merged_into_id",
            "last_order_at",
            "orders_count",
            "total_spent_cents",
            "id",
            sqlite_where=text("last_order_at IS NOT NULL"),
            postgresql_where=text("last_order_at IS NOT NULL"),
        ),
        Index(
            "ix_contacts_spend",
            "workspace_id",
            "merged_into_id",
            "total_spent_cents",
            "orders_count",
            sqlite_where=text("last_order_at IS NOT NULL"),
            postgresql_where=text("last_order_at IS NOT NULL"),
        ),
        # cart-abandoners from the index alone; a closed cart is SQL NULL (JsonOrNull)
        Index(
            "ix_contacts_open_cart",
            "workspace_id",
            "merged_into_id",
            "id",
            sqlite_where=text("open_cart IS NOT NULL"),
            postgresql_where=text("open_cart IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    traits: Mapped[dict[str, Any]] = mapped_column(Json)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    locale: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str] = mapped_column(String(64))
    timezone_source: Mapped[str] = mapped_column(String(16))
    tags: Mapped[list[str]] = mapped_column(Json)
    stage: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str | None] = mapped_column(String(200))
    score: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    consent: Mapped[dict[str, Any]] = mapped_column(Json)
    merged_into_id: Mapped[str | None] = mapped_column(String(26))
    currency: Mapped[str] = mapped_column(String(3))
    orders_count: Mapped[int] = mapped_column(Integer)
    total_spent_cents: Mapped[int] = mapped_column(BigInteger)
    first_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_product_viewed: Mapped[dict[str, Any] | None] = mapped_column(Json)
    open_cart: Mapped[dict[str, Any] | None] = mapped_column(JsonOrNull)
    open_boletos: Mapped[list[dict[str, Any]]] = mapped_column(Json)
    # the current web session: started_at, last_at and counts per event (see state._touch_session)
    web_session: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    # last open, click, reply, sign-up or e-mail opt-in: how "no open in 60 days" is told
    last_engaged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # when the contact last entered each flow, {flow_key: ISO time}; None until first needed
    flow_entries: Mapped[dict[str, str] | None] = mapped_column(Json, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Identity(WorkspaceScoped, Base):
    """One way to recognise a contact: ``kind`` is user_id, anonymous_id, email or phone."""

    __tablename__ = "identities"
    # value before kind: a batch looks identities up by value, whatever their kind
    __table_args__ = (PrimaryKeyConstraint("workspace_id", "value", "kind"),)

    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))
    contact_id: Mapped[str] = mapped_column(String(26), index=True)


class ConsentRecord(WorkspaceScoped, Base):
    """Consent history (LGPD asks who agreed to what, when, and how). The current state lives on the contact."""

    __tablename__ = "consent_records"
    __table_args__ = (Index("ix_consent_records_contact", "workspace_id", "contact_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    contact_id: Mapped[str] = mapped_column(String(26))
    channel: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(16))
    granted: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ContactMerge(WorkspaceScoped, Base):
    """A record that two contacts turned out to be one person."""

    __tablename__ = "contact_merges"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    from_contact_id: Mapped[str] = mapped_column(String(26), index=True)
    into_contact_id: Mapped[str] = mapped_column(String(26), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Order(WorkspaceScoped, Base):
    """An order as far as contact facts need it: who, when, how much, and whether it still counts."""

    __tablename__ = "orders"
    __table_args__ = (
        PrimaryKeyConstraint("workspace_id", "order_id"),
        Index("ix_orders_contact", "workspace_id", "contact_id"),
    )

    order_id: Mapped[str] = mapped_column(String(200))
    contact_id: Mapped[str] = mapped_column(String(26))
    total_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime())
