"""`pmg sticker` and `pmg demo`: the main job, the whole pipeline offline for one user, from a terminal."""

from __future__ import annotations

import asyncio
import json
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from bot.cli_support import fail, load_settings, load_stages, out
from bot.identity import Platform, UserKey
from bot.settings import Profile, Settings
from bot.text_input import clean_text
from bot.user_files import UserFiles

if TYPE_CHECKING:
    from bot.stickers import StickerReply
    from bot.store import BehaviorStore

DEMO_USER = "demo"


def _write_sticker(settings: Settings, user: UserKey, webp: bytes, png: bytes, out_path: Path | None) -> Path:
    """The WebP and a PNG beside it: at `out_path`, else new files in the user's own folder (removed
    with the user by /forget)."""
    if out_path is None:
        return UserFiles(settings.user_files_dir).write_sticker(user, webp, png)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(webp)
    out_path.with_suffix(".png").write_bytes(png)
    return out_path


def _report(reply: StickerReply, settings: Settings, path: Path | None, sheet: Path | None) -> dict[str, Any]:
    result = reply.result
    return {
        "profile": settings.profile,
        "models": reply.models,
        "personalized": reply.personalized,
        "preference_keywords": result.request.preference_keywords,
        "target_keywords": result.request.target_keywords,
        "mood": result.request.mood,
        "alpha": result.alpha,
        "candidates": [c.summary() for c in result.candidates],
        "chosen": result.chosen,
        "notes": result.notes,
        "checkpoint_version": result.checkpoint_version,
        "path": str(path) if path else None,
        "sheet": str(sheet) if sheet else None,
        "generation_id": reply.generation_id,
        "seconds": round(reply.seconds, 3),
    }


def _print_report(report: dict[str, Any]) -> None:
    out.print(
        f"[bold]profile:[/] {report['profile']}  ({'; '.join(report['models'].values())})", highlight=False
    )
    if report["checkpoint_version"]:
        out.print(
            f"[bold]soft preference embeddings:[/] checkpoint {report['checkpoint_version']}", highlight=False
        )
    if not report["personalized"]:
        out.print(
            "[yellow]no history for this user (or no consent to use it): the sticker follows the mood alone[/]"
        )
    if report["generation_id"] is None:
        out.print("[yellow]not recorded: this user has not consented to personalization[/]")
    out.print(
        f"[bold]preference keywords:[/] {', '.join(report['preference_keywords']) or '(none)'}",
        highlight=False,
    )
    out.print(
        f"[bold]mood:[/] {report['mood']}   [bold]target keywords:[/] {', '.join(report['target_keywords'])}",
        highlight=False,
    )
    table = Table("#", "w_p:w_t", "what it shows", "d_p", "d_t", f"z (α={report['alpha']})")
    for index, candidate in enumerate(report["candidates"]):
        mark = (
            "[bold green]→[/]" if index == report["chosen"] else ("[red]✗[/]" if candidate["flagged"] else "")
        )
        w_p, w_t = candidate["weights"]
        table.add_row(
            f"{mark}{index}",
            f"{w_p:g}:{w_t:g}",
            escape(candidate["description"]),
            f"{candidate['d_p']:.3f}",
            f"{candidate['d_t']:.3f}",
            f"{candidate['z']:.3f}",
        )
    out.print(table)
    for note in report["notes"]:
        out.print(f"[yellow]note:[/] {note}", highlight=False)
    if report["path"]:
        out.print(
            f"[bold green]sticker:[/] {report['path']}  (and .png beside it)  in {report['seconds']:.1f} s",
            highlight=False,
        )
    if report["sheet"]:
        out.print(f"[bold]candidates sheet:[/] {report['sheet']}", highlight=False)


def run_sticker(
    user: str,
    conversation: list[str],
    *,
    profile: Profile | None,
    alpha: float | None,
    seed: int | None,
    out_path: Path | None,
    sheet: Path | None,
    as_json: bool,
    seed_history: dict[str, Any] | None = None,
) -> None:
    """Load the engines, make one sticker, write its files, print (or JSON) what happened; `profile`
    and `alpha` override the settings when given."""
    from adapters.store.errors import StoreError
    from bot.composition import open_store, sticker_backend, sticker_job
    from bot.ray_backend import BackendUnavailable
    from bot.service import ServiceError
    from bot.stickers import make_sticker
    from pmg_engine.selection import check_alpha
    from pmg_engine.sticker_result import NothingToDrawError

    settings = load_settings(profile)
    alpha = settings.alpha if alpha is None else alpha
    try:
        check_alpha(alpha)
    except ValueError as error:
        fail(str(error), code=2)
    # argv may hold lone surrogates (bytes that are not UTF-8): cleaned like every other text.
    text = clean_text("\n".join(conversation), settings.max_message_chars).text
    turns = [line.strip() for line in text.splitlines() if line.strip()]
    if not turns:
        fail('give the conversation to answer, e.g. pmg sticker --user ann "we won the match!!"', code=2)
    try:
        key = UserKey.of(Platform.CONSOLE, user)
    except ValueError as error:
        fail(f"--user: {error}", code=2)
    stages = load_stages(settings)

    async def run() -> StickerReply:
        async with (
            await open_store(settings) as store,
            sticker_backend(settings, stages) as service,
        ):
            if seed_history is not None:
                await seed_demo_history(store, key, seed_history)
            turns_used = turns[-settings.conversation_turns :]
            return await make_sticker(
                store, service, sticker_job(settings), key, turns_used, alpha=alpha, seed=seed
            )

    try:
        reply = asyncio.run(run())
    except (NothingToDrawError, BackendUnavailable, ServiceError, StoreError) as error:
        fail(str(error))
    path = None
    files_ = reply.result.files
    if files_ is not None:
        path = _write_sticker(settings, key, files_.webp, files_.png, out_path)
    if sheet is not None:
        from pmg_engine.contact_sheet import contact_sheet

        labels = [
            f"{'→ ' if i == reply.result.chosen else ''}{c.candidate.weights[0]:g}:{c.candidate.weights[1]:g}  z={c.z:.2f}"
            for i, c in enumerate(reply.result.candidates)
        ]
        contact_sheet(
            [c.candidate.image for c in reply.result.candidates],
            labels,
            sheet,
            title=f"{user}: {turns[-1][:80]}",
        )
    report = _report(reply, settings, path, sheet)
    if as_json:
        out.print_json(json.dumps(report))
    else:
        _print_report(report)
    if files_ is None:
        fail("every candidate was flagged by the safety check, so no sticker was made (sorry!)")


async def seed_demo_history(store: BehaviorStore, user: UserKey, history: dict[str, Any]) -> None:
    """Give the demo user, and a few other demo users, a sticker history with images, once (a rerun adds
    nothing). All of them consent to personalization and training, so `pmg retrain` has data."""
    if await store.recent_history(user, 1):
        return
    users = [(user, history["name"], history["stickers"], history["messages"])]
    users += [
        (UserKey.of(Platform.CONSOLE, other["name"]), other["name"], other["stickers"], [])
        for other in history["training_users"]
    ]
    for key, name, stickers, messages in users:
        await store.set_consent(key, personalize=True, train=True, display_name=name)
        await _record_stickers(store, key, stickers)
        for message in messages:
            await store.record_message(key, "demo", message)


async def _record_stickers(store: BehaviorStore, user: UserKey, stickers: list[dict[str, str]]) -> None:
    """Each sticker with an image: its emoji's OpenMoji art as a 512-px WebP, as a platform would send it."""
    from pmg_engine.behaviors import StickerSent
    from pmg_engine.sticker_art.composer import plain_sticker
    from pmg_engine.sticker_file import encode_sticker

    for index, sticker in enumerate(stickers):
        image = encode_sticker(plain_sticker(sticker["emoji"])).webp
        await store.record_sticker_use(
            user, f"demo-{user.external_id}", StickerSent(**sticker), message_id=index, image=image
        )


ProfileOption = Annotated[
    Profile | None, typer.Option("--profile", help="offline, tiny or sd15 (default: PMG_PROFILE).")
]
AlphaOption = Annotated[
    float | None, typer.Option("--alpha", help="α of z: 1 = preference only, 0 = mood only.")
]
SeedOption = Annotated[int | None, typer.Option("--seed", help="Base seed (default: PMG_SEED).")]
OutOption = Annotated[
    Path | None, typer.Option("--out", help="Where the WebP goes (a PNG is written beside it).")
]
SheetOption = Annotated[
    Path | None, typer.Option("--sheet", help="Also write a PNG contact sheet of all candidates.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def demo_history() -> dict[str, Any]:
    """The bundled demo user: a name, a sticker history, messages and a conversation."""
    return json.loads((files("bot") / "data" / "demo_user.json").read_text(encoding="utf-8"))


def sticker(
    conversation: Annotated[
        list[str], typer.Argument(help="The conversation to answer: one argument per turn.")
    ],
    user: Annotated[str, typer.Option("--user", help="Whose sticker: a console user name.")],
    profile: ProfileOption = None,
    alpha: AlphaOption = None,
    seed: SeedOption = None,
    out_path: OutOption = None,
    sheet: SheetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make a sticker for USER answering the conversation: keywords, candidates, z, the file."""
    run_sticker(
        user,
        conversation,
        profile=profile,
        alpha=alpha,
        seed=seed,
        out_path=out_path,
        sheet=sheet,
        as_json=as_json,
    )


def demo(
    conversation: Annotated[
        list[str] | None, typer.Argument(help="Turns to answer (default: a bundled one).")
    ] = None,
    profile: ProfileOption = None,
    alpha: AlphaOption = None,
    seed: SeedOption = None,
    out_path: OutOption = None,
    sheet: SheetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Seed a demo user with a bundled sticker history, then make their sticker."""
    history = demo_history()
    run_sticker(
        DEMO_USER,
        conversation or history["conversation"],
        profile=profile,
        alpha=alpha,
        seed=seed,
        out_path=out_path,
        sheet=sheet,
        as_json=as_json,
        seed_history=history,
    )
