"""The service inbox: conversations that hold what contacts write and what we send them."""

from jornada.inbox.actions import (
    close_conversation,
    get_conversation,
    mark_read,
    readable,
    record_inbound,
)
from jornada.inbox.models import Conversation, ConversationMessage
from jornada.inbox.queries import conversation_detail, conversation_summary, list_conversations

__all__ = [
    "Conversation",
    "ConversationMessage",
    "close_conversation",
    "conversation_detail",
    "conversation_summary",
    "get_conversation",
    "list_conversations",
    "mark_read",
    "readable",
    "record_inbound",
]
