"""Providers per workspace: which one sends each channel, with its secrets encrypted at rest."""

from jornada.channels.providers.kinds import KINDS, ProviderKind
from jornada.channels.providers.secrets import Keyring, key_file, keyring_for, load_keyring
from jornada.channels.providers.settings import (
    ProviderConfig,
    configured,
    get_provider,
    list_providers,
    set_provider,
    unset_provider,
)

__all__ = [
    "KINDS",
    "Keyring",
    "ProviderConfig",
    "ProviderKind",
    "configured",
    "get_provider",
    "key_file",
    "keyring_for",
    "list_providers",
    "load_keyring",
    "set_provider",
    "unset_provider",
]
