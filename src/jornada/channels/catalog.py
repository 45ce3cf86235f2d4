"""Where templates come from: the workspace's own, else the library's."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib import resources

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from jornada.channels.models import StoredTemplate
from jornada.channels.templates import Template


@cache
def library_templates() -> dict[str, Template]:
    """The templates the library flows use (pt-BR), parsed once per process."""
    source = (resources.files("jornada.channels") / "library" / "templates.yaml").read_text("utf-8")
    return {
        key: Template(
            id=key,
            channel=v["channel"],
            body=v["body"],
            subject=v.get("subject"),
            approved=bool(v.get("approved", False)),
        )
        for key, v in yaml.safe_load(source).items()
    }


def template_for(session: Session, workspace_id: str, template_id: str) -> Template | None:
    """The workspace's version of ``template_id`` if it has one, else the library's, else None."""
    stored = session.scalar(
        select(StoredTemplate).where(
            StoredTemplate.workspace_id == workspace_id, StoredTemplate.template_id == template_id
        )
    )
    if stored is not None:
        return Template(
            id=template_id, channel=stored.channel, body=stored.body, subject=stored.subject
        )
    return library_templates().get(template_id)


class TemplateBook:
    """The templates of some workspaces, read with one query for a whole batch of sends."""

    def __init__(self, session: Session, workspace_ids: Iterable[str]) -> None:
        self._stored = {
            (t.workspace_id, t.template_id): Template(
                id=t.template_id, channel=t.channel, body=t.body, subject=t.subject
            )
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
