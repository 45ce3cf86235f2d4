"""Pure: a raw Segment message → a validated, normalised, time-corrected :class:`EventRecord`.

Each processor either returns the record or raises :class:`Rejected` naming
the field and the reason; a rejection never aborts the rest of a batch.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from jornada.contacts.normalize import (
    InvalidValue,
    check_timezone,
    normalize_email,
    normalize_phone,
    parse_consent,
)
from jornada.events.record import EventRecord
from jornada.ids import new_id
from jornada.ingest.errors import Rejected
from jornada.ingest.schemas import MESSAGE_TYPES, Alias, Group, Identify, Page, Screen, Track


def as_utc(value: datetime | None) -> datetime | None:
    """Segment reads a timestamp without offset as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _field_of(error: ValidationError) -> tuple[str, str]:
    first = error.errors(include_url=False)[0]
    loc = ".".join(str(part) for part in first["loc"]) or "message"
    return loc, first["msg"]


def corrected_timestamp(
    timestamp: datetime | None, sent_at: datetime | None, received_at: datetime
) -> datetime:
    """Segment's clock-skew correction: ``receivedAt - (sentAt - timestamp)``.

    The client's clock may be wrong, but the gap between when it says the
    event happened and when it says it sent it is right; anchor that gap on
    our own receive time. Without ``sentAt`` the client's timestamp is kept;
    without a timestamp, the receive time is used.
    """
    if timestamp is None:
        return received_at
    if sent_at is None:
        return timestamp
    return received_at - (sent_at - timestamp)


def to_record(
    raw: Any,
    *,
    index: int,
    received_at: datetime,
    batch_sent_at: datetime | None = None,
    default_type: str | None = None,
    batch_context: dict[str, Any] | None = None,
) -> EventRecord:
    """Validate one message; raises :class:`Rejected` with the offending field."""
    if not isinstance(raw, dict):
        raise Rejected("each message must be a JSON object", field="message")
    kind = raw.get("type", default_type)
    model = MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise Rejected(
            f"type must be one of {', '.join(MESSAGE_TYPES)}, not {kind!r}", field="type"
        )
    try:
        msg = model.model_validate(raw)
    except ValidationError as exc:
        field, reason = _field_of(exc)
        raise Rejected(reason, field=field) from exc

    if isinstance(msg, Alias):
        if msg.user_id is None:
            raise Rejected("alias needs the userId to link previousId to", field="userId")
    elif msg.user_id is None and msg.anonymous_id is None:
        raise Rejected("either userId or anonymousId is required", field="userId")

    sent_at = as_utc(msg.sent_at) or batch_sent_at
    timestamp = as_utc(msg.timestamp) or as_utc(msg.original_timestamp)
    context = msg.context if msg.context is not None else batch_context
    record = EventRecord(
        message_id=msg.message_id or f"jornada-{new_id()}",
        type=msg.type,
        timestamp=corrected_timestamp(timestamp, sent_at, received_at),
        received_at=received_at,
        user_id=msg.user_id,
        anonymous_id=msg.anonymous_id,
        context=context,
        index=index,
    )
    if isinstance(msg, Track):
        record.event = msg.event
        record.properties = msg.properties
    elif isinstance(msg, Page | Screen):
        record.event = msg.name
        record.properties = msg.properties
    elif isinstance(msg, Identify):
        record.properties = msg.traits
        _read_traits(record, msg.traits, "traits")
    elif isinstance(msg, Group):
        record.event = msg.group_id
        record.properties = msg.traits
    elif isinstance(msg, Alias):
        record.previous_id = msg.previous_id
    if context:
        _read_context(record, context)
    return record


def _read_traits(record: EventRecord, traits: dict[str, Any], where: str) -> None:
    """Normalise the traits that identify or reach a contact; refuse the ones that are wrong."""
    try:
        key = "email"
        if (email := traits.get("email")) not in (None, ""):
            record.email = normalize_email(str(email))
        key = "phone"
        if (phone := traits.get("phone")) not in (None, ""):
            record.phone = normalize_phone(str(phone))
        key = "timezone"
        if (tz := traits.get("timezone")) not in (None, ""):
            record.timezone = check_timezone(str(tz))
        key = "consent"
        if (consent := traits.get("consent")) is not None:
            record.consent = parse_consent(consent)
    except InvalidValue as exc:
        raise Rejected(str(exc), field=f"{where}.{key}") from exc
    record.traits = traits


def _read_context(record: EventRecord, context: dict[str, Any]) -> None:
    locale = context.get("locale")
    if isinstance(locale, str) and locale:
        record.locale = locale[:35]
    traits = context.get("traits")
    if record.type != "identify" and isinstance(traits, dict) and traits:
        _read_traits(record, traits, "context.traits")
