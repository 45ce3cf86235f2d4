"""Channels: the messages Jornada sends and how they are made.

Merchant-editable templates rendered safely (``templates``), the policy gate
every send passes (``policy``), the record of messages sent (``models``) and
the sandbox channel that stores instead of sending (``sandbox``).
"""

from jornada.channels.templates import (
    CHANNELS,
    SUPPORTED_LOCALES,
    Rendered,
    Template,
    TemplateError,
    UnsafeTemplate,
    lint,
    render,
)

__all__ = [
    "CHANNELS",
    "SUPPORTED_LOCALES",
    "Rendered",
    "Template",
    "TemplateError",
    "UnsafeTemplate",
    "lint",
    "render",
]
