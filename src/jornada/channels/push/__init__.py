"""Web Push: VAPID keys per workspace, browsers' subscriptions, delivery, the service worker."""

from jornada.channels.push.config import generate_keys, public_key_of
from jornada.channels.push.models import PushSubscription
from jornada.channels.push.subscriptions import (
    Subscription,
    parse_subscription,
    subscribe,
    subscriptions_of,
    unsubscribe,
)

__all__ = [
    "PushSubscription",
    "Subscription",
    "generate_keys",
    "parse_subscription",
    "public_key_of",
    "subscribe",
    "subscriptions_of",
    "unsubscribe",
]
