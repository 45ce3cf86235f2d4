"""Enqueue effects inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from jornada.db import insert_ignore
from jornada.outbox.models import OutboxItem


def enqueue(
    session: Session,
    *,
    workspace_id: str,
    contact_id: str,
    kind: str,
    idempotency_key: str,
    payload: dict[str, Any],
    now: datetime,
    run_id: str | None = None,
    step_id: str | None = None,
    channel: str | None = None,
    due_at: datetime | None = None,
) -> None:
    """Add an effect; the same idempotency key twice is one effect."""
    session.execute(
        insert_ignore(OutboxItem.__table__, session.get_bind().dialect.name),  # type: ignore[arg-type]
        [
            {
                "workspace_id": workspace_id,
                "contact_id": contact_id,
                "kind": kind,
                "idempotency_key": idempotency_key,
                "payload": payload,
                "run_id": run_id,
                "step_id": step_id,
                "channel": channel,
                "status": "pending",
                "due_at": due_at or now,
                "attempts": 0,
                "created_at": now,
            }
        ],
    )


def enqueue_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Many effects in one statement; each row as :func:`enqueue` takes it (``due_at`` required)."""
    now_rows = [
        {
            "status": "pending",
            "attempts": 0,
            "created_at": row["due_at"],
            "reason": None,
            "processed_at": None,
            **row,
        }
        for row in rows
    ]
    session.execute(
        insert_ignore(OutboxItem.__table__, session.get_bind().dialect.name),  # type: ignore[arg-type]
        now_rows,
    )
