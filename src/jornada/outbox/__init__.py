"""The outbox: effects decided in one transaction, carried out by the scheduler. Where flows meet channels."""

from jornada.outbox.models import OutboxItem
from jornada.outbox.service import enqueue, enqueue_many

__all__ = ["OutboxItem", "enqueue", "enqueue_many"]
