"""The Segment HTTP Tracking API messages, as pydantic models.

Field names and meanings follow Segment's spec (``userId``, ``anonymousId``,
``messageId``, ``timestamp``, ``sentAt``, ``context``…) so existing analytics
clients work unchanged. Unknown top-level fields (``integrations``,
``channel``, ``version``…) are accepted and ignored, as Segment does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints


def _id_to_str(value: Any) -> Any:
    """Segment clients may send numeric ids; they are the same id as their string form."""
    if isinstance(value, bool):
        return value  # let validation refuse it
    if isinstance(value, int | float):
        return str(value)
    return value


Id = Annotated[
    str,
    BeforeValidator(_id_to_str),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MessageId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, str_max_length=8192)

    type: str
    message_id: MessageId | None = Field(default=None, alias="messageId")
    user_id: Id | None = Field(default=None, alias="userId")
    anonymous_id: Id | None = Field(default=None, alias="anonymousId")
    timestamp: datetime | None = None
    original_timestamp: datetime | None = Field(default=None, alias="originalTimestamp")
    sent_at: datetime | None = Field(default=None, alias="sentAt")
    context: dict[str, Any] | None = None


class Track(_Message):
    type: Literal["track"] = "track"
    event: Name
    properties: dict[str, Any] = Field(default_factory=dict)


class Identify(_Message):
    type: Literal["identify"] = "identify"
    traits: dict[str, Any] = Field(default_factory=dict)


class Page(_Message):
    type: Literal["page"] = "page"
    name: Name | None = None
    category: Name | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class Screen(_Message):
    type: Literal["screen"] = "screen"
    name: Name | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class Group(_Message):
    type: Literal["group"] = "group"
    group_id: Id = Field(alias="groupId")
    traits: dict[str, Any] = Field(default_factory=dict)


class Alias(_Message):
    type: Literal["alias"] = "alias"
    previous_id: Id = Field(alias="previousId")


Message = Annotated[Track | Identify | Page | Screen | Group | Alias, Field(discriminator="type")]

MESSAGE_TYPES: dict[str, type[_Message]] = {
    "track": Track,
    "identify": Identify,
    "page": Page,
    "screen": Screen,
    "group": Group,
    "alias": Alias,
}


class BatchBody(BaseModel):
    """``POST /v1/batch``: documented here for OpenAPI; items are validated one by one."""

    batch: list[dict[str, Any]]
    sent_at: datetime | None = Field(default=None, alias="sentAt")
    write_key: str | None = Field(default=None, alias="writeKey")
    context: dict[str, Any] | None = None


class IngestResponse(BaseModel):
    success: bool
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]
