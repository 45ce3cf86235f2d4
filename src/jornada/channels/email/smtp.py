"""Send over SMTP (STARTTLS or implicit TLS, AUTH), every smtplib failure mapped to ours.

One :class:`SmtpTransport` is one connection, opened on the first message and
reused for the next ones; a server that drops it (idle timeout, a per-session
limit) gets one reconnection before the provider is called unavailable.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

from jornada.channels.email.compose import Outbound, compose
from jornada.channels.errors import (
    DeliveryError,
    PermanentDeliveryError,
    ProviderUnavailable,
    TransientDeliveryError,
)
from jornada.channels.providers.secrets import Keyring

#: Reply codes that say the recipient's address does not exist or is not accepted: a hard bounce
#: (RFC 5321 §4.2.3: 550 mailbox unavailable, 551 user not local, 553 mailbox name not allowed).
BOUNCE_CODES = frozenset({550, 551, 553})


def _text(reply: bytes | str) -> str:
    return (reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply).strip()


def _bounce(code: int, reply: str) -> bool:
    # enhanced status 5.1.x is about the address (RFC 3463): 5.1.1 bad mailbox, 5.1.2 bad domain…
    return code in BOUNCE_CODES or reply.startswith("5.1.")


@contextmanager
def map_smtp_errors(stage: str) -> Iterator[None]:
    """Turn smtplib's and the socket's exceptions into the delivery error tree (STYLE §4)."""
    try:
        yield
    except DeliveryError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        ((address, (code, reply)),) = list(exc.recipients.items())[:1]
        said = f"{code} {_text(reply)}"
        if code >= 500:
            raise PermanentDeliveryError(
                f"recipient {address} refused: {said}", bounce=_bounce(code, _text(reply))
            ) from exc
        raise TransientDeliveryError(f"recipient {address} deferred: {said}") from exc
    except smtplib.SMTPSenderRefused as exc:
        # the sender is the workspace's setting: no message is at fault, keep them queued
        raise ProviderUnavailable(
            f"sender {exc.sender} refused: {exc.smtp_code} {_text(exc.smtp_error)}"
        ) from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise ProviderUnavailable(
            f"authentication failed: {exc.smtp_code} {_text(exc.smtp_error)}"
        ) from exc
    except smtplib.SMTPDataError as exc:
        said = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        if exc.smtp_code >= 500:
            raise PermanentDeliveryError(f"message refused: {said}") from exc
        raise TransientDeliveryError(f"message deferred: {said}") from exc
    except (smtplib.SMTPConnectError, smtplib.SMTPHeloError) as exc:
        raise ProviderUnavailable(f"{stage}: {exc.smtp_code} {_text(exc.smtp_error)}") from exc
    except smtplib.SMTPResponseException as exc:
        said = f"{stage}: {exc.smtp_code} {_text(exc.smtp_error)}"
        if exc.smtp_code >= 500:
            raise PermanentDeliveryError(said) from exc
        raise TransientDeliveryError(said) from exc
    except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
        # connection refused or reset, timeouts, TLS failures, STARTTLS not offered, disconnects
        raise ProviderUnavailable(f"{stage}: {str(exc) or type(exc).__name__}") from exc


def _abandon(conn: smtplib.SMTP, code: int) -> None:
    """After a refusal: a closing server (421) is let go, else the transaction is reset."""
    if code == 421:
        conn.close()
        return
    with suppress(smtplib.SMTPServerDisconnected):
        conn.rset()


def _transfer(conn: smtplib.SMTP, sender: str, to: str, data: bytes) -> None:
    """MAIL, RCPT, DATA for one message, as ``sendmail`` does for one recipient.

    Written out because ``sendmail`` parses both addresses again for every
    message (a quarter of the client's time); these are already clean addresses.
    """
    if not (sender.isascii() and to.isascii()):
        raise PermanentDeliveryError(f"{to}: addresses must be ASCII (no SMTPUTF8 support)")
    size = f" SIZE={len(data)}" if conn.does_esmtp and conn.has_extn("size") else ""
    code, reply = conn.docmd("MAIL", f"FROM:<{sender}>{size}")
    if code != 250:
        _abandon(conn, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = conn.docmd("RCPT", f"TO:<{to}>")
    if code not in (250, 251):
        _abandon(conn, code)
        raise smtplib.SMTPRecipientsRefused({to: (code, reply)})
    code, reply = conn.data(data)
    if code != 250:
        _abandon(conn, code)
        raise smtplib.SMTPDataError(code, reply)


class SmtpTransport:
    """One SMTP connection for one workspace's e-mail provider."""

    def __init__(
        self,
        options: dict[str, Any],
        secrets: dict[str, Any],
        *,
        keys: Keyring,
        public_url: str,
        timeout: float = 30.0,
    ) -> None:
        self.options, self.secrets = options, secrets
        self.keys, self.public_url, self.timeout = keys, public_url, timeout
        self._conn: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        host, port = str(self.options["host"]), int(self.options["port"])
        security = self.options.get("security", "starttls")
        where = f"{host}:{port}"
        conn: smtplib.SMTP
        with map_smtp_errors(f"cannot connect to {where}"):
            if security == "tls":
                conn = smtplib.SMTP_SSL(
                    host, port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                conn = smtplib.SMTP(host, port, timeout=self.timeout)
        try:
            with map_smtp_errors(f"{where} refused the session"):
                conn.ehlo()
                if security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
                    conn.ehlo()
                if self.options.get("username"):
                    conn.login(str(self.options["username"]), str(self.secrets["password"]))
        except BaseException:
            conn.close()
            raise
        return conn

    def send(self, message: Outbound, now: datetime) -> str:
        """Send one message; returns its Message-ID. Raises a :class:`DeliveryError`."""
        data, sender, message_id = compose(
            message,
            self.options,
            self.secrets,
            keys=self.keys,
            public_url=self.public_url,
            now=now,
        )
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self._open()
            try:
                with map_smtp_errors("sending"):
                    _transfer(self._conn, sender, message.to, data)
                return message_id
            except ProviderUnavailable:
                self.close()  # a dropped connection: one fresh one, then give up
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                self._conn.close()
            self._conn = None
