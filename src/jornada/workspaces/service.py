"""Creating workspaces and resolving a key to its workspace."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from jornada.errors import Conflict, InvalidInput, NotFound, Unauthorized
from jornada.ids import hash_secret, new_id, new_secret
from jornada.workspaces.models import ApiKey, Workspace

KeyKind = Literal["write", "secret"]
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class CreatedWorkspace:
    """A new workspace and its keys in clear text: the only time they can be seen."""

    id: str
    name: str
    write_key: str
    secret_key: str


def create_workspace(
    session: Session,
    name: str,
    *,
    now: datetime,
    timezone: str = "America/Sao_Paulo",
    currency: str = "BRL",
    url: str | None = None,
) -> CreatedWorkspace:
    """Create a workspace with one write key and one secret key; keys are stored hashed."""
    if not _NAME.match(name):
        raise InvalidInput(
            "a workspace name is 1-64 lowercase letters, digits, '-' or '_', starting with a letter or digit",
            field="name",
        )
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {timezone!r}", field="timezone") from exc
    if url is not None and not url.startswith(("https://", "http://")):
        raise InvalidInput("the shop URL starts with https:// (or http://)", field="url")
    if session.scalar(select(Workspace.id).where(Workspace.name == name)) is not None:
        raise Conflict(f"workspace {name!r} already exists", field="name")
    workspace = Workspace(
        id=new_id(),
        name=name,
        timezone=timezone,
        currency=currency.upper(),
        url=url,
        created_at=now,
    )
    session.add(workspace)
    session.flush()
    write_key = new_secret("wk")
    secret_key = new_secret("sk")
    for kind, key in (("write", write_key), ("secret", secret_key)):
        session.add(
            ApiKey(
                id=new_id(),
                workspace_id=workspace.id,
                kind=kind,
                key_hash=hash_secret(key),
                prefix=key[:8],
                created_at=now,
            )
        )
    return CreatedWorkspace(workspace.id, name, write_key, secret_key)


def get_workspace_by_name(session: Session, name: str) -> Workspace:
    workspace = session.scalar(select(Workspace).where(Workspace.name == name))
    if workspace is None:
        raise NotFound(f"no workspace named {name!r}", field="workspace")
    return workspace


def authenticate(session: Session, key: str | None, kind: KeyKind) -> Workspace:
    """The workspace a key of ``kind`` belongs to; :class:`Unauthorized` otherwise."""
    if not key:
        raise Unauthorized(f"missing {kind} key", field="authorization")
    workspace = session.scalar(
        select(Workspace)
        .join(ApiKey, ApiKey.workspace_id == Workspace.id)
        .where(
            ApiKey.key_hash == hash_secret(key), ApiKey.kind == kind, ApiKey.revoked_at.is_(None)
        )
    )
    if workspace is None:
        raise Unauthorized(f"invalid {kind} key", field="authorization")
    return workspace
