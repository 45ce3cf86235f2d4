"""Creating tasks, with the assignee rule applied."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jornada.contacts import Contact
from jornada.crm.models import Member, Task
from jornada.ids import new_id
from jornada.outbox import OutboxItem


def assignee_for(session: Session, workspace_id: str, rule: str, contact: Contact) -> str | None:
    """``owner``: the contact's owner, else round-robin; ``round_robin``: the member with fewest open tasks."""
    if rule == "owner" and contact.owner:
        return contact.owner
    if rule not in ("owner", "round_robin"):
        return rule  # a named person
    open_tasks = (
        select(Task.assignee, func.count().label("n"))
        .where(Task.workspace_id == workspace_id, Task.status == "open")
        .group_by(Task.assignee)
        .subquery()
    )
    row = session.execute(
        select(Member.email)
        .outerjoin(open_tasks, open_tasks.c.assignee == Member.email)
        .where(Member.workspace_id == workspace_id, Member.active.is_(True))
        .order_by(func.coalesce(open_tasks.c.n, 0), Member.created_at, Member.id)
        .limit(1)
    ).first()
    return row[0] if row else None


def create_task(session: Session, item: OutboxItem, contact: Contact, now: datetime) -> Task:
    """The task an outbox item asks for; a second call for the same item returns the first task."""
    existing = session.scalar(select(Task).where(Task.outbox_id == item.id))
    if existing is not None:
        return existing
    payload = item.payload
    task = Task(
        id=new_id(),
        workspace_id=item.workspace_id,
        contact_id=contact.id,
        run_id=item.run_id,
        outbox_id=item.id,
        type=str(payload.get("type", "call")),
        title=str(payload.get("title", "")),
        assignee=assignee_for(
            session, item.workspace_id, str(payload.get("assignee", "owner")), contact
        ),
        priority=str(payload.get("priority", "normal")),
        status="open",
        due_at=datetime.fromisoformat(str(payload["due_at"])),
        created_at=now,
    )
    session.add(task)
    return task
