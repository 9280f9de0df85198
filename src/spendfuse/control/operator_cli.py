"""Operator commands: ``spendfuse kill|degrade|restore TYPE ID``, ``keygen`` and ``notify``.

A hand-issued command goes to the same control topic as the worker's, signed with the same key
(``SPENDFUSE_CONTROL_SIGNING_KEY`` or ``_FILE``), keyed by target, and records who issued it
(``operator:<who>``) and why. The command is stamped at publish time like every other
(:mod:`spendfuse.control.stamp`): ``issued_at`` is the wall clock, ``expires_at`` is ``--for``
from now, and its version is above every version already on the topic for its key (the CLI reads
the compacted topic first), so a restore lifts what is in force even if the worker's clock runs
ahead. ``restore TYPE ID`` lifts every command in force on the target, scoped ones included.

Operator commands are ``risk_protection``: a human decided, so they act at every risk tier.
Without a configured signing key the commands refuse to run: a key generated on the spot would be
trusted by no gateway.
"""

from __future__ import annotations

import getpass
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from spendfuse.schemas.command import (
    CommandKind,
    ControlCommand,
    DegradeParams,
    Target,
    TargetType,
    level_params,
)
from spendfuse.schemas.common import DegradationLevel
from spendfuse.settings import Settings

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# What each level asks of a gateway when the operator gives no explicit parameters (DOMAIN's table).
_TARGET_TYPES = click.Choice([t.value for t in TargetType])


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``1h``, ``2d``."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise click.BadParameter(f"{text!r}: use a number and a unit, e.g. 30m, 1h or 2d")
    return timedelta(seconds=int(match[1]) * _UNIT_S[match[2]])


def build_operator_command(
    kind: CommandKind,
    target: Target,
    *,
    who: str,
    reason: str,
    now: datetime,
    ttl: timedelta | None,
    level: DegradationLevel | None = None,
    params: DegradeParams | None = None,
) -> ControlCommand:
    """A hand-issued command: who and why recorded, expiry explicit, and how to lift it."""
    lift = f"spendfuse restore {target.type.value} {target.id} --reason '...'"
    return ControlCommand(
        command_id=f"op-{uuid.uuid4().hex[:24]}",
        kind=kind,
        target=target,
        level=level,
        params=params or DegradeParams(),
        issued_by=f"operator:{who}",
        reason=reason,
        issued_at=now,
        ttl_s=ttl.total_seconds() if ttl else None,
        expires_at=now + ttl if ttl else None,
        risk_protection=True,
        how_to_lift=None if kind is CommandKind.RESTORE else lift,
        tenant_id=target.id if target.type is TargetType.TENANT else None,
        use_case_id=target.id if target.type is TargetType.USE_CASE else None,
    )


def _publish(command: ControlCommand, bootstrap_servers: str | None) -> None:
    from spendfuse.control.errors import ControlError
    from spendfuse.control.keys import load_signer
    from spendfuse.control.publish import publish_commands, read_in_force
    from spendfuse.control.stamp import CommandSigner

    settings = Settings()
    servers = bootstrap_servers or settings.bootstrap_servers
    if not servers:
        raise click.UsageError(
            "no Kafka: pass --bootstrap-servers or set SPENDFUSE_BOOTSTRAP_SERVERS"
        )
    try:  # no default directory: never generate a key no gateway trusts
        signer = CommandSigner(
            load_signer(settings.control_signing_key, settings.control_signing_key_file)
        )
        kafka = settings.kafka_client_config()  # SPENDFUSE_KAFKA_*: the operator's principal
        versions, in_force = read_in_force(
            servers, _verify_specs(signer.verify_key_spec()), config=kafka
        )
        for key, version in versions.items():
            signer.observe(key, version)
        commands = [command]
        if command.kind is CommandKind.RESTORE:  # lift every scope of the target in force
            scopes = [
                held.within
                for held in in_force.values()
                if held.target == command.target and held.key() != command.key()
            ]
            commands += [
                command.model_copy(
                    update={"within": scope, "command_id": f"{command.command_id}-{n}"}
                )
                for n, scope in enumerate(scopes, 1)
            ]
        published = publish_commands(servers, commands, signer, config=kafka)
    except ControlError as exc:
        raise click.ClickException(str(exc)) from None
    for sent in published:
        click.echo(
            f"{sent.kind.value} {sent.key()} published as {sent.command_id} "
            f"by {sent.issued_by} (version {sent.version})"
            + (f", expires {sent.expires_at:%Y-%m-%d %H:%M:%S}Z" if sent.expires_at else "")
            + (f"; lift with: {sent.how_to_lift}" if sent.how_to_lift else "")
        )


def _verify_specs(own: str) -> list[str]:
    """The operator's own verify key, plus the gateways' (``SPENDFUSE_GATEWAY_VERIFY_KEYS``) of
    the same algorithm: the worker may sign with another key during a rotation."""
    from spendfuse.gateway.config import GatewaySettings

    family = own.partition(":")[0]
    try:
        theirs = GatewaySettings().key_specs()
    except OSError:  # an unreadable gateway key file is the gateways' problem, not this one's
        theirs = []
    return [own, *(s for s in theirs if s.partition(":")[0] == family)]


def _common(fn):
    fn = click.option(
        "--bootstrap-servers",
        envvar=["SPENDFUSE_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"],
        default=None,
    )(fn)
    fn = click.option("--by", "who", default=None, help="Who is acting (default: $USER).")(fn)
    fn = click.option("--reason", required=True, help="Why; recorded on the command.")(fn)
    fn = click.argument("target_id")(fn)
    return click.argument("target_type", type=_TARGET_TYPES)(fn)


def _who(who: str | None) -> str:
    return who or getpass.getuser()


@click.command()
@_common
@click.option("--for", "ttl", default="1h", show_default=True, help="Expires after (30m, 2d).")
def kill(
    target_type: str,
    target_id: str,
    reason: str,
    who: str | None,
    bootstrap_servers: str | None,
    ttl: str,
) -> None:
    """Kill-switch a target: gateways deny its requests until it expires or is restored."""
    target = Target(type=TargetType(target_type), id=target_id)
    _publish(
        build_operator_command(
            CommandKind.KILL_SWITCH,
            target,
            who=_who(who),
            reason=reason,
            now=datetime.now(UTC),
            ttl=parse_duration(ttl),
        ),
        bootstrap_servers,
    )


@click.command()
@_common
@click.option("--for", "ttl", default="1h", show_default=True, help="Expires after (30m, 2d).")
@click.option(
    "--level", type=click.Choice(["L1", "L2", "L3", "L4"]), default="L1", show_default=True
)
@click.option("--model-tier", type=click.Choice(["small", "standard", "approved_fallback"]))
@click.option("--max-output-tokens", type=click.IntRange(min=1))
@click.option("--cache-first/--no-cache-first", default=None)
def degrade(
    target_type: str,
    target_id: str,
    reason: str,
    who: str | None,
    bootstrap_servers: str | None,
    ttl: str,
    level: str,
    model_tier: str | None,
    max_output_tokens: int | None,
    cache_first: bool | None,
) -> None:
    """Degrade a target to a level (L1 cache-first/small model/short outputs by default)."""
    lvl = DegradationLevel(level)
    overrides = {
        k: v
        for k, v in {
            "model_tier": model_tier,
            "cache_first": cache_first,
            "max_output_tokens": max_output_tokens,
        }.items()
        if v is not None
    }
    params = level_params(lvl).model_copy(update=overrides)
    target = Target(type=TargetType(target_type), id=target_id)
    _publish(
        build_operator_command(
            CommandKind.DEGRADE,
            target,
            who=_who(who),
            reason=reason,
            now=datetime.now(UTC),
            ttl=parse_duration(ttl),
            level=lvl,
            params=DegradeParams.model_validate(params.model_dump()),
        ),
        bootstrap_servers,
    )


@click.command()
@_common
def restore(
    target_type: str, target_id: str, reason: str, who: str | None, bootstrap_servers: str | None
) -> None:
    """Lift whatever is in force on a target (kill switch or degradation)."""
    target = Target(type=TargetType(target_type), id=target_id)
    _publish(
        build_operator_command(
            CommandKind.RESTORE,
            target,
            who=_who(who),
            reason=reason,
            now=datetime.now(UTC),
            ttl=None,
            level=DegradationLevel.L0,
        ),
        bootstrap_servers,
    )


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".spendfuse/keys"),
    show_default=True,
)
def keygen(out_dir: Path) -> None:
    """Create an Ed25519 signing key (mode 0600) and the public key gateways verify with."""
    from spendfuse.control.keys import write_key_pair

    private, public, signer = write_key_pair(out_dir)
    click.echo(
        f"key {signer.key_id}: signing key in {private} (keep it secret; point "
        f"SPENDFUSE_CONTROL_SIGNING_KEY_FILE at it), verify key in {public} "
        "(SPENDFUSE_GATEWAY_VERIFY_KEYS_FILE)"
    )


@click.command()
def notify() -> None:
    """Route, group and deliver spendfuse.alerts (Slack, webhook, PagerDuty, console)."""
    from spendfuse.streams.notify import run_notifier

    run_notifier(Settings())


def register(group: click.Group) -> None:
    for command in (kill, degrade, restore, keygen, notify):
        group.add_command(command)
