"""The `pmg` command line: the sticker job and its demo, database, diagnostics, evaluation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.engine import make_url

from adapters.store import schema
from adapters.store.database import create_engine, shown_url
from adapters.store.errors import StoreError
from bot.chat_cli import chat
from bot.cli_support import configure_logging, fail, load_keyword_engine, load_settings, out
from bot.composition import server_options
from bot.doctor import run_doctor
from bot.eval_cli import eval_app
from bot.mood_cli import mood_app
from bot.retrain_cli import run_retrain
from bot.run_cli import run
from bot.serve_cli import serve
from bot.service_bench import bench_app
from bot.settings import Settings
from bot.sticker_cli import demo, sticker

# A traceback with locals could print a token or a user's text held in some frame: never show locals.
app = typer.Typer(
    help="pmg-stickers: personalized emoticon stickers (PMG, WWW '24).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="The behavior store's schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(eval_app, name="eval")
app.add_typer(mood_app, name="mood")
app.add_typer(bench_app, name="bench")
app.command()(sticker)
app.command()(demo)
app.command("retrain")(run_retrain)
app.command()(chat)
app.command()(run)
app.command()(serve)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
) -> None:
    configure_logging(verbose=verbose)


@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Show the profile, models, database and platform settings, and whether each is usable."""
    checks = run_doctor(load_settings())
    if as_json:
        out.print_json(
            json.dumps({"ok": all(c.ok is not False for c in checks), "checks": [asdict(c) for c in checks]})
        )
    else:
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        marks = {True: "[green]ok[/]", False: "[bold red]MISSING[/]", None: "[dim]·[/]"}
        section = ""
        for check in checks:
            if check.section != section:
                section = check.section
                table.add_row(f"[bold]{section}[/]", "", "")
            table.add_row(f"  {check.name}", marks[check.ok], check.detail)
        out.print(table)
    if any(check.ok is False for check in checks):
        raise typer.Exit(1)


def _run_store_task(task: Coroutine[Any, Any, None]) -> None:
    try:
        asyncio.run(task)
    except StoreError as error:
        fail(str(error))


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create the database or bring it to the latest schema (also done on every start)."""
    settings = load_settings()
    _run_store_task(schema.upgrade(settings.database_url, revision, server=server_options(settings)))
    _print_revision(settings)


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, `base` for empty.")]) -> None:
    """Take the schema back to an older revision (data in dropped tables is lost)."""
    settings = load_settings()
    _run_store_task(schema.downgrade(settings.database_url, revision, server=server_options(settings)))
    _print_revision(settings)


@db_app.command("copy")
def db_copy(
    from_url: Annotated[
        str, typer.Option("--from", help="The store to copy (only read), e.g. the SQLite file's URL.")
    ],
    to_url: Annotated[
        str, typer.Option("--to", help="An empty database, e.g. postgresql+asyncpg://user@host/db.")
    ],
    from_blobs: Annotated[
        Path | None,
        typer.Option("--from-blobs", help="The source's blob folder (default: PMG_DATA_DIR/blobs)."),
    ] = None,
    to_blobs: Annotated[
        Path | None, typer.Option("--to-blobs", help="The target's blob folder or cache (default: the same).")
    ] = None,
) -> None:
    """Copy a store's rows and blobs into an empty database (SQLite into PostgreSQL), verified by row counts
    and blob hashes, in one transaction on the target; the source is left untouched."""
    from adapters.store.behavior_store import SqlBehaviorStore
    from adapters.store.copy import copy_store

    settings = load_settings()
    source_blobs = from_blobs or settings.blob_dir

    async def run() -> None:
        source = SqlBehaviorStore.attach(from_url, source_blobs)
        try:
            report = await copy_store(
                source, to_url, to_blobs or source_blobs, target_blob_store=settings.blob_store
            )
        finally:
            await source.close()
        rows = ", ".join(f"{name} {count}" for name, count in report.rows.items())
        out.print(
            f"copied into {shown_url(to_url)}: {rows}; {report.blobs} blobs, every hash checked",
            highlight=False,
        )

    _run_store_task(run())


@db_app.command("current")
def db_current() -> None:
    """Print the database file and its schema revision."""
    _print_revision(load_settings())


def _print_revision(settings: Settings) -> None:
    url = settings.database_url

    async def revision() -> str | None:
        engine = create_engine(url, server=server_options(settings))
        try:
            return await schema.current_revision(engine)
        finally:
            await engine.dispose()

    try:
        current = asyncio.run(revision())
    except StoreError as error:
        fail(str(error))
    head = schema.head_revision()
    state = "latest" if current == head else f"latest is {head}"
    shown = make_url(url).render_as_string(hide_password=True)
    out.print(f"{shown}: revision {current or 'none (empty)'} ({state})", highlight=False)


@app.command()
def keywords(
    sticker: Annotated[list[str], typer.Option("--sticker", "-s", help="An emoji the user sent (repeat).")],
    say: Annotated[list[str], typer.Option("--say", help="A line of the current conversation (repeat).")],
    set_title: Annotated[str, typer.Option("--set", help="Set title of the stickers.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Stage 1 for a made-up user: preference keywords, the conversation's mood and target keywords."""
    from pmg_engine.behaviors import StickerSent, UserBehaviors

    engine = load_keyword_engine(load_settings())
    user = UserBehaviors(
        stickers=[StickerSent(emoji, None, set_title) for emoji in sticker], conversation=say
    )
    [result] = engine.understand([user])
    report = {
        "preference_keywords": result.preferences.keywords,
        "mood": result.mood.mood,
        "target_keywords": result.target_keywords,
        "seconds": {name: round(value, 2) for name, value in result.timings.items()},
        "llm": engine.llm.name,
    }
    if as_json:
        out.print_json(json.dumps(report))
        return
    for name, value in report.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        out.print(f"[bold]{name.replace('_', ' ')}:[/] {shown}", highlight=False)


if __name__ == "__main__":  # `python -m bot.cli`: how the bot starts `retrain` in its own process
    app()
