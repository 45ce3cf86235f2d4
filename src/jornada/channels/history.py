"""What the policy gate needs to know about a batch's contacts, read with a few queries.

:class:`SendHistory` reads, once per batch: the suppression list entries for
the batch's addresses, the contacts' marketing messages of the last week and
their last WhatsApp replies of the last 24 hours. Messages sent earlier in the
same batch are added as they go, so caps and smart sending see them too.
:func:`suppress` puts an address on the list.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from jornada.channels.models import Message, Suppression
from jornada.channels.policy import (
    DEFAULT_SENDING,
    SUPPRESSION_REASONS,
    WEEK,
    WHATSAPP_WINDOW,
    History,
    Recipient,
    SendingSettings,
    Sent,
    address,
    normal_address,
)
from jornada.channels.templates import CHANNELS
from jornada.contacts import Contact
from jornada.errors import InvalidInput
from jornada.events import Event
from jornada.events.canonical import MESSAGE_REPLIED
from jornada.outbox import OutboxItem


def suppress(
    session: Session, workspace_id: str, channel: str, address: str, reason: str, now: datetime
) -> Suppression:
    """Put ``address`` on the workspace's suppression list for ``channel``.

    An address already listed keeps its entry and date; the newest reason replaces the old.
    """
    if reason not in SUPPRESSION_REASONS:
        raise InvalidInput(
            f"reason must be one of {', '.join(SUPPRESSION_REASONS)}, not {reason!r}",
            field="reason",
        )
    if channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS)}", field="channel")
    if not address.strip():
        raise InvalidInput("an address is needed", field="address")
    key = {"workspace_id": workspace_id, "channel": channel}
    key["address"] = normal_address(channel, address)
    row = session.get(Suppression, key)
    if row is None:
        row = Suppression(**key, reason=reason, created_at=now)
        session.add(row)
    else:
        row.reason = reason
    session.flush()
    return row


def recipient(contact: Contact) -> Recipient:
    """The gate's view of ``contact``."""
    return Recipient(
        email=contact.email,
        phone=contact.phone,
        timezone=contact.timezone,
        consent={k: bool(v.get("granted")) for k, v in contact.consent.items()},
        contact_id=contact.id,
    )


def _purpose(item: OutboxItem) -> str:
    return str(item.payload.get("purpose", "marketing"))


class SendHistory:
    """The gate's :class:`History` for each contact of a batch of outbox items.

    ``flow_quiet``: quiet hours (start, end of the quiet period) set by flows,
    keyed ``(workspace_id, flow key)``; ``settings``: the workspaces' own gate
    settings (read once for the batch); a workspace missing there has the defaults.
    """

    def __init__(
        self,
        session: Session,
        items: Sequence[OutboxItem],
        contacts: Mapping[str, Contact],
        now: datetime,
        flow_quiet: Mapping[tuple[str, str], tuple[str, str]] | None = None,
        settings: Mapping[str, SendingSettings] | None = None,
    ) -> None:
        self._flow_quiet = flow_quiet or {}
        self._settings = settings or {}
        self._sent: dict[str, list[Sent]] = defaultdict(list)
        self._suppressed: dict[str, dict[tuple[str, str], str]] = defaultdict(dict)
        self._replied: dict[str, datetime] = {}
        self._recipients: dict[str, Recipient] = {}
        sends = [i for i in items if i.kind == "send"]
        if not sends:
            return
        workspaces = sorted({i.workspace_id for i in sends})
        addresses = set()
        for item in sends:
            channel = item.channel or "email"
            to = address(channel, self.recipient(contacts[item.contact_id]))
            if to:
                addresses.add(normal_address(channel, to))
        if addresses:
            for row in session.execute(
                select(
                    Suppression.workspace_id,
                    Suppression.channel,
                    Suppression.address,
                    Suppression.reason,
                ).where(
                    Suppression.workspace_id.in_(workspaces),
                    Suppression.address.in_(sorted(addresses)),
                )
            ):
                self._suppressed[row.workspace_id][(row.channel, row.address)] = row.reason
        marketing = sorted({i.contact_id for i in sends if _purpose(i) == "marketing"})
        if marketing:
            for sent in session.execute(
                select(Message.contact_id, Message.channel, Message.template, Message.created_at)
                .where(
                    Message.workspace_id.in_(workspaces),
                    Message.contact_id.in_(marketing),
                    Message.purpose == "marketing",
                    Message.status != "failed",
                    Message.created_at > now - WEEK,
                )
                .order_by(Message.created_at)
            ):
                self._sent[sent.contact_id].append(
                    Sent(sent.channel, sent.template, sent.created_at)
                )
        on_whatsapp = sorted({i.contact_id for i in sends if i.channel == "whatsapp"})
        if on_whatsapp:
            for reply in session.execute(
                select(Event.contact_id, Event.timestamp, Event.properties).where(
                    Event.workspace_id.in_(workspaces),
                    Event.contact_id.in_(on_whatsapp),
                    Event.event == MESSAGE_REPLIED,
                    Event.timestamp > now - WHATSAPP_WINDOW,
                    Event.timestamp <= now,
                )
            ):
                channel = str((reply.properties or {}).get("channel", "")).lower()
                last = self._replied.get(reply.contact_id)
                if channel == "whatsapp" and (last is None or reply.timestamp > last):
                    self._replied[reply.contact_id] = reply.timestamp

    def recipient(self, contact: Contact) -> Recipient:
        """:func:`recipient` of ``contact``, made once per batch (the contacts do not change)."""
        found = self._recipients.get(contact.id)
        if found is None:
            found = self._recipients[contact.id] = recipient(contact)
        return found

    def of(self, item: OutboxItem) -> History:
        """What the gate knows about the past of ``item``'s contact."""
        return History(
            sent=tuple(self._sent.get(item.contact_id, ())),
            suppressed=self._suppressed.get(item.workspace_id, {}),
            whatsapp_replied_at=self._replied.get(item.contact_id),
        )

    def settings(self, item: OutboxItem) -> SendingSettings:
        """The gate settings of ``item``'s workspace."""
        return self._settings.get(item.workspace_id, DEFAULT_SENDING)

    def quiet(self, item: OutboxItem) -> tuple[str, str]:
        """The quiet hours for ``item``: its flow's, else its workspace's."""
        flow = item.payload.get("flow")
        if isinstance(flow, str) and (own := self._flow_quiet.get((item.workspace_id, flow))):
            return own
        return self.settings(item).quiet

    def record(self, item: OutboxItem, template: str, now: datetime) -> None:
        """A message of ``item`` went out now: later sends of the batch count it."""
        if _purpose(item) == "marketing":
            self._sent[item.contact_id].append(Sent(item.channel or "email", template, now))
