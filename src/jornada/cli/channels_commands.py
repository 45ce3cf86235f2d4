"""``jornada channels``: which provider sends each channel of a workspace (secrets never printed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from jornada.channels.providers import (
    Keyring,
    get_provider,
    keyring_for,
    list_providers,
    set_provider,
    unset_provider,
)
from jornada.channels.push.keys import set_up_vapid
from jornada.channels.templates import CHANNELS
from jornada.channels.webhook.keys import set_up_webhook
from jornada.cli.commands import Context, console, main, pass_context
from jornada.cli.provider_limits import LimitedGroup
from jornada.clock import SystemClock
from jornada.errors import NotFound
from jornada.workspaces import Workspace


def _keys(ctx: Context) -> Keyring:
    return keyring_for(ctx.settings, ctx.database.url)


@main.group()
def channels() -> None:
    """Providers per channel; a channel without one runs in the sandbox (stored, not sent)."""


@channels.group("set", cls=LimitedGroup)
def channels_set() -> None:
    """Set a channel's provider (the secrets are stored encrypted)."""


@channels_set.command("email")
@click.option("--workspace", "workspace_name", required=True)
@click.option(
    "--smtp-url", required=True, help="smtp://user:pass@host:port (smtps:// for implicit TLS)"
)
@click.option("--from", "sender", required=True, help="sender: address or 'Name <address>'")
@click.option("--reply-to", default=None, help="Reply-To address")
@click.option(
    "--starttls/--no-starttls", default=True, show_default=True, help="STARTTLS on smtp://"
)
@click.option(
    "--dkim-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM private key that signs outgoing mail (DKIM)",
)
@click.option("--dkim-selector", default=None, help="DKIM selector (the s= tag)")
@click.option("--dkim-domain", default=None, help="DKIM signing domain (the d= tag)")
@pass_context
def channels_set_email(
    ctx: Context,
    workspace_name: str,
    smtp_url: str,
    sender: str,
    reply_to: str | None,
    starttls: bool,
    dkim_key: Path | None,
    dkim_selector: str | None,
    dkim_domain: str | None,
) -> None:
    """Send the workspace's e-mail over SMTP."""
    target = ctx.workspace(workspace_name)
    options = {
        "url": smtp_url,
        "security": "starttls" if starttls else "none",
        "from": sender,
        "reply_to": reply_to,
        "dkim_selector": dkim_selector,
        "dkim_domain": dkim_domain,
    }
    secrets = {"dkim_private_key": dkim_key.read_text("utf-8")} if dkim_key else {}
    with ctx.database.write() as session:
        config = set_provider(
            session,
            target.id,
            "email",
            options={k: v for k, v in options.items() if v is not None},
            secrets=secrets,
            now=SystemClock().now(),
            keys=_keys(ctx),
        )
        console.print(f"email: {config.view()['summary']}")


@channels_set.command("whatsapp")
@click.option("--workspace", "workspace_name", required=True)
@click.option("--phone-number-id", required=True, help="the sending number's id in Meta's API")
@click.option("--business-account-id", default=None, help="WhatsApp Business Account id")
@click.option("--api-version", default=None, help="Graph API version  [default: v21.0]")
@click.option("--language", default=None, help="language of the approved templates [pt_BR]")
@click.option("--catalog-id", default=None, help="Meta commerce catalog of product messages")
@click.option("--access-token", default=None, help="token that sends (kept if omitted)")
@click.option("--app-secret", default=None, help="signs the webhook's POSTs (kept if omitted)")
@click.option("--verify-token", default=None, help="webhook handshake token (kept if omitted)")
@click.option("--base-url", default=None, help="API base URL  [default: graph.facebook.com]")
@pass_context
def channels_set_whatsapp(
    ctx: Context,
    workspace_name: str,
    phone_number_id: str,
    business_account_id: str | None,
    api_version: str | None,
    language: str | None,
    catalog_id: str | None,
    access_token: str | None,
    app_secret: str | None,
    verify_token: str | None,
    base_url: str | None,
) -> None:
    """Send the workspace's WhatsApp through the WhatsApp Business Cloud API."""
    target = ctx.workspace(workspace_name)
    options = {
        "phone_number_id": phone_number_id,
        "business_account_id": business_account_id,
        "api_version": api_version,
        "language": language,
        "catalog_id": catalog_id,
    }
    secrets = {
        "access_token": access_token,
        "app_secret": app_secret,
        "verify_token": verify_token,
    }
    with ctx.database.write() as session:
        config = set_provider(
            session,
            target.id,
            "whatsapp",
            options={k: v for k, v in options.items() if v is not None},
            secrets={k: v for k, v in secrets.items() if v is not None},
            base_url=base_url,
            now=SystemClock().now(),
            keys=_keys(ctx),
        )
        console.print(f"whatsapp: {config.view()['summary']}")
        console.print(
            f"webhook: {ctx.settings.public_url.rstrip('/')}/webhooks/whatsapp/{target.id}"
        )


def _twilio_options(command: Any) -> Any:
    """The options ``channels set sms`` and ``channels set voice`` share."""
    for option in reversed(
        [
            click.option("--workspace", "workspace_name", required=True),
            click.option("--account-sid", required=True, help="Twilio Account SID (AC…)"),
            click.option("--auth-token", default=None, help="Auth Token (kept if omitted)"),
            click.option("--base-url", default=None, help="API base URL [api.twilio.com]"),
        ]
    ):
        command = option(command)
    return command


def _set_twilio(
    ctx: Context,
    channel: str,
    workspace_name: str,
    options: dict[str, str | None],
    auth_token: str | None,
    base_url: str | None,
) -> None:
    target = ctx.workspace(workspace_name)
    with ctx.database.write() as session:
        config = set_provider(
            session,
            target.id,
            channel,
            provider="twilio",
            options={k: v for k, v in options.items() if v is not None},
            secrets={"auth_token": auth_token} if auth_token is not None else {},
            base_url=base_url,
            now=SystemClock().now(),
            keys=_keys(ctx),
        )
        console.print(f"{channel}: {config.view()['summary']}")
    hooks = f"{ctx.settings.public_url.rstrip('/')}/webhooks/twilio/{target.id}"
    console.print(f"status callbacks: {hooks}/status")
    if channel == "sms":
        console.print(f"incoming SMS (the number's messaging webhook, POST): {hooks}/sms")


@channels_set.command("sms")
@_twilio_options
@click.option("--from", "sender", default=None, help="sending number, E.164 (+5511…)")
@click.option("--messaging-service-sid", default=None, help="Messaging Service (MG…) to send from")
@pass_context
def channels_set_sms(
    ctx: Context,
    workspace_name: str,
    account_sid: str,
    auth_token: str | None,
    base_url: str | None,
    sender: str | None,
    messaging_service_sid: str | None,
) -> None:
    """Send the workspace's SMS through Twilio's Messages API."""
    options = {
        "account_sid": account_sid,
        "from": sender,
        "messaging_service_sid": messaging_service_sid,
    }
    _set_twilio(ctx, "sms", workspace_name, options, auth_token, base_url)


@channels_set.command("voice")
@_twilio_options
@click.option("--from", "sender", required=True, help="calling number, E.164 (+5511…)")
@click.option("--language", default=None, help="language <Say> speaks  [default: pt-BR]")
@click.option("--voice", default=None, help="text-to-speech voice, e.g. Polly.Camila")
@pass_context
def channels_set_voice(
    ctx: Context,
    workspace_name: str,
    account_sid: str,
    auth_token: str | None,
    base_url: str | None,
    sender: str,
    language: str | None,
    voice: str | None,
) -> None:
    """Call with the workspace's voice messages through Twilio's Calls API (TwiML <Say>/<Play>)."""
    options = {"account_sid": account_sid, "from": sender, "language": language, "voice": voice}
    _set_twilio(ctx, "voice", workspace_name, options, auth_token, base_url)


@channels_set.command("webhook")
@click.option("--workspace", "workspace_name", required=True)
@click.option("--rotate-secret", is_flag=True, help="replace the signing secret with a new one")
@pass_context
def channels_set_webhook(ctx: Context, workspace_name: str, rotate_secret: bool) -> None:
    """Call flows' webhook steps for real, signed with the workspace's secret (printed once)."""
    target = ctx.workspace(workspace_name)
    with ctx.database.write() as session:
        config, secret = set_up_webhook(
            session, target.id, rotate=rotate_secret, now=SystemClock().now(), keys=_keys(ctx)
        )
        console.print(f"webhook: {config.view()['summary']}")
    if secret is None:
        console.print("signing secret kept (--rotate-secret makes a new one)")
        return
    console.print("signing secret (shown once; receivers check X-Jornada-Signature with it):")
    click.echo(secret)


@channels_set.command("push")
@click.option("--workspace", "workspace_name", required=True)
@click.option("--subject", default=None, help="mailto:address or https:// URL for push services")
@click.option("--title", default=None, help="a notification's title when its template has none")
@click.option("--url", default=None, help="the page a click opens when the message names none")
@click.option("--icon", default=None, help="https:// URL of the notification's icon")
@pass_context
def channels_set_push(
    ctx: Context,
    workspace_name: str,
    subject: str | None,
    title: str | None,
    url: str | None,
    icon: str | None,
) -> None:
    """Send Web Push: makes the VAPID keys the first time (as ``jornada keys vapid``), then sets
    the subject and the notifications' defaults; an empty value removes a default."""
    target = ctx.workspace(workspace_name)
    keys, now = _keys(ctx), SystemClock().now()
    with ctx.database.write() as session:
        current = get_provider(session, target.id, "push", keys=keys)
        if current is None or current.provider != "webpush":
            shop = session.get(Workspace, target.id)
            current = set_up_vapid(
                session,
                target.id,
                subject=subject,
                title=shop.name if shop is not None else None,
                url=shop.url if shop is not None else None,
                now=now,
                keys=keys,
            ).config
            console.print("push: new VAPID keys")
        options = dict(current.options)
        given = {"subject": subject, "title": title, "url": url, "icon": icon}
        options.update({k: v for k, v in given.items() if v is not None})
        config = set_provider(
            session, target.id, "push", provider="webpush", options=options, now=now, keys=keys
        )
        console.print(f"push: {config.view()['summary']}")
    console.print("public key (applicationServerKey):")
    click.echo(config.options["public_key"])


@channels.command("list")
@click.option("--workspace", "workspace_name", required=True)
@click.option("--json", "as_json", is_flag=True, help="print the settings as JSON")
@pass_context
def channels_list(ctx: Context, workspace_name: str, as_json: bool) -> None:
    """Each channel's provider, secrets masked; the others run in the sandbox."""
    target = ctx.workspace(workspace_name)
    with ctx.database.read() as session:
        views = [c.view() for c in list_providers(session, target.id, keys=_keys(ctx))]
    if as_json:
        click.echo(json.dumps(views, default=str, indent=2))
        return
    by_channel = {v["channel"]: v for v in views}
    table = Table("channel", "provider", "settings")
    for channel in CHANNELS:
        view = by_channel.get(channel)
        if view is None:
            table.add_row(channel, "sandbox", "not configured: messages are stored, not sent")
        else:
            summary = view["summary"] or ", ".join(f"{k}={v}" for k, v in view["options"].items())
            table.add_row(channel, view["provider"], summary)
    console.print(table)


@channels.command("unset")
@click.argument("channel", type=click.Choice(CHANNELS))
@click.option("--workspace", "workspace_name", required=True)
@pass_context
def channels_unset(ctx: Context, channel: str, workspace_name: str) -> None:
    """Remove CHANNEL's provider: its messages go back to the sandbox."""
    target = ctx.workspace(workspace_name)
    with ctx.database.write() as session:
        if not unset_provider(session, target.id, channel):
            raise NotFound(f"no provider is set for {channel}", field="channel")
    console.print(f"{channel}: back to the sandbox")
