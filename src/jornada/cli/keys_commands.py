"""``jornada keys vapid``: a workspace's Web Push key pair (the private key is never printed)."""

from __future__ import annotations

import click

from jornada.channels.providers import keyring_for
from jornada.channels.push.keys import set_up_vapid
from jornada.cli.commands import Context, console, main, pass_context
from jornada.clock import SystemClock
from jornada.workspaces import Workspace


@main.group()
def keys() -> None:
    """Key pairs Jornada signs with."""


@keys.command("vapid")
@click.option("--workspace", "workspace_name", required=True)
@click.option(
    "--subject",
    default=None,
    help="mailto:address or https:// URL push services may contact (needed the first time)",
)
@click.option(
    "--rotate",
    is_flag=True,
    help="replace existing keys: every browser's subscription is dropped and must be made again",
)
@pass_context
def keys_vapid(ctx: Context, workspace_name: str, subject: str | None, rotate: bool) -> None:
    """Make the workspace's VAPID key pair for Web Push; print the public key.

    The public key is the applicationServerKey browsers subscribe with
    (GET /v1/push/key serves it too); the private key is stored encrypted and
    never shown. Run again with --subject to change only the subject.
    """
    target = ctx.workspace(workspace_name)
    with ctx.database.write() as session:
        shop = session.get(Workspace, target.id)
        done = set_up_vapid(
            session,
            target.id,
            subject=subject,
            title=shop.name if shop is not None else None,
            url=shop.url if shop is not None else None,
            rotate=rotate,
            now=SystemClock().now(),
            keys=keyring_for(ctx.settings, ctx.database.url),
        )
    if done.generated:
        console.print(f"push: new VAPID keys, subject {done.config.options['subject']}")
    else:
        console.print(f"push: subject now {done.config.options['subject']}; keys kept")
    if done.dropped:
        console.print(
            f"[yellow]rotated:[/yellow] {done.dropped} subscription(s) made with the old key were"
            " dropped; those browsers must subscribe again"
        )
    console.print("public key (applicationServerKey):")
    click.echo(done.public_key)
