"""``spendfuse rules check|backtest|metrics|detectors|show`` and ``spendfuse silence ...``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def rules() -> None:
    """Validate, inspect and backtest rule files."""


@rules.command()
@click.argument("directory", type=_DIR)
def check(directory: Path) -> None:
    """Validate every rule file in DIRECTORY; print each error with file:line:column."""
    from spendfuse.rules.errors import RuleFileError
    from spendfuse.rules.loader import load_rule_dir

    try:
        rs = load_rule_dir(directory)
    except RuleFileError as exc:
        for issue in exc.issues:
            click.echo(str(issue))
        click.echo(f"{len(exc.issues)} error(s)", err=True)
        sys.exit(1)
    click.echo(
        f"ok: {len(rs.sources)} file(s), {len(rs.rules)} rule(s), {len(rs.budgets)} "
        f"budget(s), {len(rs.quotas)} quota(s), {len(rs.tenants)} tenant(s)"
    )


@rules.command()
@click.argument("directory", type=_DIR)
@click.argument("events", type=_FILE)
@click.option("--with-default-pack", is_flag=True, help="Merge DIRECTORY over the default pack.")
def backtest(directory: Path, events: Path, with_default_pack: bool) -> None:
    """Replay EVENTS.jsonl through the rules in DIRECTORY; per rule, what it would have done."""
    from spendfuse.backtest import backtest_file, format_table
    from spendfuse.rules.errors import RuleFileError
    from spendfuse.rules_runtime import build_pipeline
    from spendfuse.settings import Settings

    try:
        pipeline = build_pipeline(Settings(), directory, default_pack=with_default_pack)
    except RuleFileError as exc:
        click.echo(str(exc))
        sys.exit(1)
    click.echo(format_table(backtest_file(events, pipeline)))


@rules.command()
def metrics() -> None:
    """List the metric catalog: names, windows and units rules may use."""
    from spendfuse.rules.metrics.catalog import METRICS

    for m in METRICS.values():
        click.echo(f"{m.name:24} {m.unit:10} {','.join(m.windows()):30} {m.description}")


@rules.command()
def detectors() -> None:
    """List the detectors a rule may name (``detector: {name: ..., params: {...}}``)."""
    from spendfuse.detectors import aliases, list_detectors, resolve

    for name in list_detectors():
        params = ", ".join(resolve(name).param_names())
        click.echo(f"{name:20} params: {params}")
    for name, target in sorted(aliases().items()):
        click.echo(f"{name:20} = {target}")


@rules.command()
@click.argument("name")
@click.option("--rules-dir", type=_DIR, default=None, help="Merged over the default pack.")
def show(name: str, rules_dir: Path | None) -> None:
    """Print rule NAME as the worker runs it (YAML), to copy into a rules directory and edit."""
    import yaml

    from spendfuse.rules.loader import load_rules

    rs = load_rules(rules_dir, True)
    spec = rs.rules.get(name)
    if spec is None:
        import difflib

        near = difflib.get_close_matches(name, list(rs.rules), n=1)
        tip = f"; did you mean {near[0]!r}?" if near else ""
        raise click.ClickException(f"no rule named {name!r}{tip}")
    doc = {"version": 1, "rules": [spec.model_dump(mode="json", by_alias=True, exclude_unset=True)]}
    click.echo(yaml.safe_dump(doc, sort_keys=False), nl=False)


@click.group()
def silence() -> None:
    """Silence alerts by matcher for a while (maintenance windows)."""


def _store() -> Path:
    from spendfuse.settings import Settings
    from spendfuse.silence_store import silences_path

    return silences_path(Settings().data_dir)


@silence.command("add")
@click.option(
    "--matcher",
    "matchers",
    multiple=True,
    required=True,
    help='label="value", label!="v", label=~"re" or label!~"re"; repeatable.',
)
@click.option("--for", "duration", required=True, help="How long, e.g. 30m, 2h, 1d.")
@click.option("--author", required=True)
@click.option("--comment", required=True)
def silence_add(matchers: tuple[str, ...], duration: str, author: str, comment: str) -> None:
    """Create a silence; it expires by itself."""
    from datetime import timedelta

    from pydantic import ValidationError

    from spendfuse.rules.durations import parse_duration
    from spendfuse.rules.silences import new_silence
    from spendfuse.silence_store import load_silences, save_silences, share_if_configured

    try:
        length = timedelta(seconds=parse_duration(duration).seconds)
        created = new_silence(list(matchers), length, author, comment, datetime.now(UTC))
    except (ValueError, ValidationError) as exc:
        raise click.BadParameter(str(exc)) from None
    path = _store()
    save_silences(path, [*load_silences(path), created])
    click.echo(f"{created.id} until {created.ends_at.isoformat()}")
    click.echo(share_if_configured([created]))


@silence.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include expired silences.")
def silence_list(show_all: bool) -> None:
    """List active silences."""
    from spendfuse.silence_store import load_silences

    now = datetime.now(UTC)
    for s in load_silences(_store()):
        if show_all or s.ends_at > now:
            click.echo(
                f"{s.id}  until {s.ends_at.isoformat()}  {' '.join(s.matchers)}  "
                f"by {s.created_by}: {s.comment}"
            )


@silence.command("expire")
@click.argument("silence_id")
def silence_expire(silence_id: str) -> None:
    """End a silence now."""
    from spendfuse.rules.silences import expire
    from spendfuse.silence_store import load_silences, save_silences, share_if_configured

    path = _store()
    try:
        ended = expire(load_silences(path), silence_id, datetime.now(UTC))
    except KeyError:
        raise click.BadParameter(f"no silence {silence_id}") from None
    save_silences(path, ended)
    click.echo(f"expired {silence_id}")
    click.echo(share_if_configured([s for s in ended if s.id == silence_id]))


def register(main: click.Group) -> None:
    main.add_command(rules)
    main.add_command(silence)
