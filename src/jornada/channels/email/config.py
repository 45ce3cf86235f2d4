"""SMTP provider settings: parsed from an ``smtp://`` URL, checked field by field."""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any
from urllib.parse import unquote, urlsplit

from cryptography.hazmat.primitives.serialization import load_pem_private_key

from jornada.errors import InvalidInput

SECURITY = ("starttls", "tls", "none")  # STARTTLS on a plain port, implicit TLS (smtps), neither
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


def parse_smtp_url(url: str, *, starttls: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """``smtp[s]://user:pass@host:port`` → (options, secrets); the password goes to the secrets."""
    parts = urlsplit(url.strip())
    if parts.scheme not in DEFAULT_PORTS:
        raise InvalidInput(
            f"the SMTP URL must start with smtp:// or smtps://, not {parts.scheme or url!r}",
            field="smtp_url",
        )
    if not parts.hostname:
        raise InvalidInput(
            "the SMTP URL has no host (smtp://user:pass@host:port)", field="smtp_url"
        )
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError as exc:
        raise InvalidInput(f"the SMTP URL's port is not a number: {exc}", field="smtp_url") from exc
    options: dict[str, Any] = {
        "host": parts.hostname,
        "port": port,
        "username": unquote(parts.username) if parts.username else None,
        "security": "tls" if parts.scheme == "smtps" else ("starttls" if starttls else "none"),
    }
    secrets = {"password": unquote(parts.password)} if parts.password else {}
    return options, secrets


def validate_smtp(
    options: dict[str, Any], secrets: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Checked and normalised SMTP settings; a wrong one names its field and why.

    options: ``host``, ``port``, ``username``, ``security`` (starttls | tls | none),
    ``from`` (the sender, ``Name <address>`` or an address), optional ``reply_to``,
    ``dkim_selector`` and ``dkim_domain``; ``url`` (``smtp[s]://user:pass@host:port``)
    may stand for host, port, username, password and security.
    secrets: ``password``, ``dkim_private_key`` (PEM).
    """
    options, secrets = dict(options), dict(secrets)
    if url := options.pop("url", None):
        parsed, parsed_secrets = parse_smtp_url(
            str(url), starttls=options.get("security", "starttls") != "none"
        )
        options = {**parsed, **{k: v for k, v in options.items() if k not in parsed}}
        secrets = {**secrets, **parsed_secrets}
    unknown = sorted(
        set(options)
        - {"host", "port", "username", "security", "from", "reply_to"}
        - {"dkim_selector", "dkim_domain"}
    )
    if unknown:
        raise InvalidInput(f"unknown SMTP option {unknown[0]!r}", field=f"options.{unknown[0]}")
    host = options.get("host")
    if not isinstance(host, str) or not host.strip():
        raise InvalidInput("the SMTP host is missing", field="options.host")
    port = options.get("port", 587)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidInput(f"port must be 1-65535, not {port!r}", field="options.port")
    security = options.get("security", "starttls")
    if security not in SECURITY:
        raise InvalidInput(
            f"security must be one of {', '.join(SECURITY)}, not {security!r}",
            field="options.security",
        )
    sender = _address(options.get("from"), "options.from", required=True)
    reply_to = _address(options.get("reply_to"), "options.reply_to", required=False)
    clean: dict[str, Any] = {
        "host": host.strip(),
        "port": port,
        "username": options.get("username") or None,
        "security": security,
        "from": sender,
        "reply_to": reply_to,
    }
    if clean["username"] and not secrets.get("password"):
        raise InvalidInput("a username needs a password", field="secrets.password")
    dkim = {
        "dkim_selector": options.get("dkim_selector"),
        "dkim_domain": options.get("dkim_domain"),
        "dkim_private_key": secrets.get("dkim_private_key"),
    }
    if any(dkim.values()):
        for name, value in dkim.items():
            if not value:
                where = "secrets" if name == "dkim_private_key" else "options"
                raise InvalidInput(
                    "DKIM needs a selector, a domain and a private key", field=f"{where}.{name}"
                )
        try:
            load_pem_private_key(str(dkim["dkim_private_key"]).encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(
                "the DKIM key is not an unencrypted PEM private key",
                field="secrets.dkim_private_key",
            ) from exc
        clean["dkim_selector"] = str(dkim["dkim_selector"]).strip()
        clean["dkim_domain"] = str(dkim["dkim_domain"]).strip().lower()
    kept = {k: str(v) for k, v in secrets.items() if k in ("password", "dkim_private_key") and v}
    return clean, kept


def _address(value: Any, field: str, *, required: bool) -> str | None:
    if value in (None, ""):
        if required:
            raise InvalidInput("the sender address (from) is missing", field=field)
        return None
    _, address = parseaddr(str(value))
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise InvalidInput(f"{value!r} is not an e-mail address", field=field)
    return str(value).strip()


def describe_smtp(options: dict[str, Any], secrets: dict[str, Any]) -> str:
    """The settings in one line, the password masked: ``smtp://ana:****@host:587 from …``."""
    scheme = "smtps" if options.get("security") == "tls" else "smtp"
    user = options.get("username")
    auth = f"{user}:{'****' if secrets.get('password') else ''}@" if user else ""
    line = f"{scheme}://{auth}{options.get('host')}:{options.get('port')}"
    line += f" ({options.get('security')}) from {options.get('from')}"
    if options.get("dkim_selector"):
        line += f", DKIM {options['dkim_selector']}._domainkey.{options['dkim_domain']}"
    return line
