"""The providers Jornada can send through, and the channels each serves.

A kind validates its options and secrets (``validate``) and describes them in
one line with the secrets masked (``describe``). Adding a provider is one entry
here plus a transport in ``channels.delivery.TRANSPORTS``. Every kind also takes
the options ``rate_per_second`` and ``daily_cap``, which ``providers.settings``
checks (``LIMITS``) so a kind's own ``validate`` never sees them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jornada.channels.email.config import describe_smtp, validate_smtp
from jornada.channels.push.config import describe_webpush, validate_webpush
from jornada.channels.twilio.config import describe_twilio, validate_twilio
from jornada.channels.webhook.config import describe_webhook, validate_webhook
from jornada.channels.whatsapp.config import describe_whatsapp_cloud, validate_whatsapp_cloud

Validate = Callable[[dict[str, Any], dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]
Describe = Callable[[dict[str, Any], dict[str, Any]], str]


@dataclass(frozen=True)
class ProviderKind:
    """A provider: the channels it serves, how its settings are checked and shown."""

    name: str
    channels: tuple[str, ...]
    validate: Validate
    describe: Describe
    http: bool = (
        False  # speaks HTTP: a base URL may point it elsewhere (a regional API, a test server)
    )


KINDS: Mapping[str, ProviderKind] = {
    "smtp": ProviderKind("smtp", ("email",), validate_smtp, describe_smtp),
    "whatsapp_cloud": ProviderKind(
        "whatsapp_cloud",
        ("whatsapp",),
        validate_whatsapp_cloud,
        describe_whatsapp_cloud,
        http=True,
    ),
    "webpush": ProviderKind("webpush", ("push",), validate_webpush, describe_webpush),
    "webhook": ProviderKind("webhook", ("webhook",), validate_webhook, describe_webhook),
    "twilio": ProviderKind("twilio", ("sms", "voice"), validate_twilio, describe_twilio, http=True),
}
#: The provider a channel uses when none is named.
DEFAULT_KIND: Mapping[str, str] = {
    "email": "smtp",
    "whatsapp": "whatsapp_cloud",
    "push": "webpush",
    "webhook": "webhook",
    "sms": "twilio",
    "voice": "twilio",
}
