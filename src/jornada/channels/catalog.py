"""Where templates come from: the workspace's own, else the library's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from jornada.channels.models import StoredTemplate
from jornada.channels.templates import Template
from jornada.channels.whatsapp.parts import KEYS as WHATSAPP_KEYS
from jornada.channels.whatsapp.parts import WhatsAppParts
from jornada.errors import InvalidInput

#: What a template definition (a library YAML entry) may say.
DEFINITION_KEYS = ("channel", "body", "subject", "text", "approved", *WHATSAPP_KEYS)


@cache
def library_templates() -> dict[str, Template]:
    """The templates the library flows use (pt-BR), parsed once per process."""
    source = (resources.files("jornada.channels") / "library" / "templates.yaml").read_text("utf-8")
    return {key: template_from_definition(key, v) for key, v in yaml.safe_load(source).items()}


def template_from_definition(template_id: str, definition: Mapping[str, object]) -> Template:
    """A template from its YAML definition (``channel``, ``body``, ``subject``, ``approved``,
    and for WhatsApp ``buttons`` / ``list`` / ``audio`` / ``product`` / ``product_list`` with
    ``header`` and ``footer``); a wrong one raises :class:`InvalidInput` naming the field."""
    unknown = sorted(set(definition) - set(DEFINITION_KEYS))
    if unknown:
        raise InvalidInput(
            f"template {template_id!r} has no {unknown[0]!r}",
            field=unknown[0],
            template=template_id,
        )
    if not isinstance(definition.get("body"), str):
        raise InvalidInput(f"template {template_id!r} needs a body", field="body")
    subject, text = definition.get("subject"), definition.get("text")
    return Template(
        id=template_id,
        channel=str(definition.get("channel")),
        body=str(definition["body"]),
        subject=subject if isinstance(subject, str) else None,
        text=text if isinstance(text, str) else None,
        approved=bool(definition.get("approved", False)),
        whatsapp=WhatsAppParts.parse(definition),
    )


def _own(template_id: str, channel: str, body: str, subject: str | None) -> Template:
    """A workspace's own wording; a WhatsApp one keeps the library's buttons, list, audio or
    products (the wording is theirs, what the customer taps is what flows and surveys expect)."""
    library = library_templates().get(template_id)
    parts = library.whatsapp if library is not None and library.channel == channel else None
    return Template(id=template_id, channel=channel, body=body, subject=subject, whatsapp=parts)


def template_for(session: Session, workspace_id: str, template_id: str) -> Template | None:
    """The workspace's version of ``template_id`` if it has one, else the library's, else None."""
    stored = session.scalar(
        select(StoredTemplate).where(
            StoredTemplate.workspace_id == workspace_id, StoredTemplate.template_id == template_id
        )
    )
    if stored is not None:
        return _own(template_id, stored.channel, stored.body, stored.subject)
    return library_templates().get(template_id)


class TemplateBook:
    """The templates of some workspaces, read with one query for a whole batch of sends."""

    def __init__(self, session: Session, workspace_ids: Iterable[str]) -> None:
        self._stored = {
            (t.workspace_id, t.template_id): _own(t.template_id, t.channel, t.body, t.subject)
            for t in session.scalars(
                select(StoredTemplate).where(
                    StoredTemplate.workspace_id.in_(sorted(set(workspace_ids)))
                )
            )
        }

    def get(self, workspace_id: str, template_id: str) -> Template | None:
        """As :func:`template_for`: the workspace's own version, else the library's."""
        found = self._stored.get((workspace_id, template_id))
        return found if found is not None else library_templates().get(template_id)
