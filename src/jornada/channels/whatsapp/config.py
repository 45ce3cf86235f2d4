"""WhatsApp Cloud API provider settings, checked field by field."""

from __future__ import annotations

import re
from typing import Any

from jornada.errors import InvalidInput

DEFAULT_API_VERSION = "v21.0"
DEFAULT_LANGUAGE = "pt_BR"  # the language the library's templates are registered in
DEFAULT_BASE_URL = "https://graph.facebook.com"
OPTIONS = ("phone_number_id", "business_account_id", "api_version", "language", "catalog_id")
SECRETS = ("access_token", "app_secret", "verify_token")
_ID = re.compile(r"^[0-9]{1,32}$")
_VERSION = re.compile(r"^v[0-9]{1,3}\.[0-9]{1,3}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")


def validate_whatsapp_cloud(
    options: dict[str, Any], secrets: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Checked and normalised settings; a wrong one names its field and why.

    options: ``phone_number_id`` (the sending number's id in Meta's API),
    optional ``business_account_id``, ``api_version`` (default ``v21.0``) and
    ``language`` of the approved templates (default ``pt_BR``), optional
    ``catalog_id`` (the commerce catalog product messages show by default).
    secrets: ``access_token`` (sends), ``app_secret`` (signs the webhook's
    POSTs), ``verify_token`` (the webhook's subscription handshake).
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InvalidInput(f"unknown WhatsApp option {unknown[0]!r}", field=f"options.{unknown[0]}")
    clean: dict[str, Any] = {}
    for name, required in (
        ("phone_number_id", True),
        ("business_account_id", False),
        ("catalog_id", False),  # the Meta commerce catalog product messages show
    ):
        value = str(options.get(name) or "").strip()
        if not value:
            if required:
                raise InvalidInput(f"the WhatsApp {name} is missing", field=f"options.{name}")
            continue
        if not _ID.match(value):
            raise InvalidInput(f"{name} must be digits, not {value!r}", field=f"options.{name}")
        clean[name] = value
    version = str(options.get("api_version") or DEFAULT_API_VERSION).strip()
    if not _VERSION.match(version):
        raise InvalidInput(
            f"api_version must look like v21.0, not {version!r}", field="options.api_version"
        )
    clean["api_version"] = version
    language = str(options.get("language") or DEFAULT_LANGUAGE).strip()
    if not _LANGUAGE.match(language):
        raise InvalidInput(
            f"language must be a code such as pt_BR, not {language!r}", field="options.language"
        )
    clean["language"] = language
    kept: dict[str, Any] = {}
    for name in SECRETS:
        value = str(secrets.get(name) or "").strip()
        if not value:
            raise InvalidInput(f"the WhatsApp {name} is missing", field=f"secrets.{name}")
        kept[name] = value
    return clean, kept


def describe_whatsapp_cloud(options: dict[str, Any], secrets: dict[str, Any]) -> str:
    """The settings in one line, no secret shown: ``phone number 1234 (API v21.0, pt_BR)``."""
    line = f"phone number {options.get('phone_number_id')} (API {options.get('api_version')}"
    line += f", templates in {options.get('language')})"
    if options.get("business_account_id"):
        line += f", business account {options['business_account_id']}"
    if options.get("catalog_id"):
        line += f", catalog {options['catalog_id']}"
    return line + f", token {'****' if secrets.get('access_token') else 'missing'}"
