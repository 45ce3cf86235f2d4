"""Segment exports: a CSV of members, and a hashed custom audience for ad platforms.

``audience`` follows what Meta and Google accept for customer lists: SHA-256 hex of
the e-mail trimmed and lower-cased, and of the phone as E.164 digits without the
``+``. Only contacts with marketing consent granted on some channel are exported
(LGPD: ad retargeting is marketing), and a contact with neither e-mail nor phone
is skipped.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from jornada.audience.definition import SegmentDefinition
from jornada.audience.queries import segment_members
from jornada.contacts import Contact
from jornada.contacts.normalize import InvalidValue, normalize_phone
from jornada.contacts.queries import MAX_LIMIT
from jornada.contacts.state import cents_str

ExportFormat = Literal["csv", "audience"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "audience")
CSV_COLUMNS = (
    "id",
    "user_id",
    "email",
    "phone",
    "first_name",
    "orders_count",
    "total_spent",
    "last_order_at",
)
AUDIENCE_COLUMNS = ("email_sha256", "phone_sha256")


def hash_email(email: str) -> str:
    """SHA-256 hex of the e-mail trimmed and lower-cased."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def hash_phone(phone: str) -> str:
    """SHA-256 hex of the E.164 digits without ``+`` (``+55 11 98765-4321`` → ``5511987654321``)."""
    try:
        e164 = normalize_phone(phone)
    except InvalidValue:
        e164 = phone
    return hashlib.sha256("".join(ch for ch in e164 if ch.isdigit()).encode()).hexdigest()


def has_marketing_consent(contact: Contact) -> bool:
    """Marketing consent currently granted on at least one channel."""
    return any(
        key.endswith("_marketing") and isinstance(value, dict) and value.get("granted") is True
        for key, value in (contact.consent or {}).items()
    )


def iter_members(
    session: Session, workspace_id: str, definition: SegmentDefinition, now: datetime
) -> Iterator[Contact]:
    """Every member, by contact id, fetched a page at a time."""
    cursor: str | None = None
    while True:
        rows, cursor = segment_members(
            session, workspace_id, definition, now, limit=MAX_LIMIT, cursor=cursor
        )
        yield from rows
        if cursor is None:
            return


def _csv_row(contact: Contact) -> list[object]:
    first_name = (contact.traits or {}).get("first_name")
    return [
        contact.id,
        contact.user_id or "",
        contact.email or "",
        contact.phone or "",
        first_name if isinstance(first_name, str) else "",
        contact.orders_count,
        cents_str(contact.total_spent_cents),
        contact.last_order_at.isoformat() if contact.last_order_at else "",
    ]


def _audience_row(contact: Contact) -> list[object] | None:
    if not has_marketing_consent(contact) or not (contact.email or contact.phone):
        return None
    return [
        hash_email(contact.email) if contact.email else "",
        hash_phone(contact.phone) if contact.phone else "",
    ]


def export_lines(contacts: Iterable[Contact], fmt: ExportFormat) -> Iterator[str]:
    """The export as CSV text, the header first, a few hundred rows per chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS if fmt == "csv" else AUDIENCE_COLUMNS)
    for count, contact in enumerate(contacts, 1):
        row = _csv_row(contact) if fmt == "csv" else _audience_row(contact)
        if row is not None:
            writer.writerow(row)
        if count % MAX_LIMIT == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def export_segment(
    session: Session,
    workspace_id: str,
    definition: SegmentDefinition,
    now: datetime,
    fmt: ExportFormat,
) -> Iterator[str]:
    """``export_lines`` over the segment's members at ``now``."""
    return export_lines(iter_members(session, workspace_id, definition, now), fmt)
