"""Workspaces (one per shop) and their API keys."""

from jornada.workspaces.models import ApiKey, Workspace, WorkspaceRef
from jornada.workspaces.service import (
    CreatedWorkspace,
    authenticate,
    create_workspace,
    get_workspace_by_name,
)

__all__ = [
    "ApiKey",
    "CreatedWorkspace",
    "Workspace",
    "WorkspaceRef",
    "authenticate",
    "create_workspace",
    "get_workspace_by_name",
]
