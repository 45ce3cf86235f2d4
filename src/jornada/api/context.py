"""What every request handler needs, built once per app."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from jornada.clock import Clock
from jornada.config import Settings
from jornada.db import Database
from jornada.errors import Unauthorized
from jornada.workspaces import authenticate
from jornada.workspaces.models import WorkspaceRef
from jornada.workspaces.service import KeyKind


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    database: Database
    clock: Clock


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.jornada
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


def basic_auth_user(header: str | None) -> str | None:
    """The user part of ``Authorization: Basic base64(user:password)`` (Segment's write key)."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Unauthorized(
            "Authorization header is not valid Basic auth", field="authorization"
        ) from exc
    return decoded.partition(":")[0] or None


async def resolve_key(context: AppContext, key: str | None, kind: KeyKind) -> WorkspaceRef:
    def lookup() -> WorkspaceRef:
        with context.database.read() as session:
            return WorkspaceRef.of(authenticate(session, key, kind))

    return await run_in_threadpool(lookup)


async def admin_workspace(request: Request) -> WorkspaceRef:
    """The workspace of the ``Authorization: Bearer <secret key>`` header."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "send the workspace's secret key as 'Authorization: Bearer sk_…'", field="authorization"
        )
    return await resolve_key(get_context(request), token.strip(), "secret")


WorkspaceDep = Annotated[WorkspaceRef, Depends(admin_workspace)]
