"""`pmg eval`: quality bars on labelled personas (keywords, mood, stickers) and on MELD, per user and in total."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from bot.cli_support import fail, load_engines, load_keyword_engine, load_settings, out

if TYPE_CHECKING:
    from PIL import Image

eval_app = typer.Typer(help="Measure keywords, mood and stickers on labelled data.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _existing(path: Path) -> Path:
    if not path.is_file():
        fail(f"{path} is not a file")
    return path


@eval_app.command("personas")
def eval_personas(
    file: Annotated[Path, typer.Argument(help="JSON Lines of labelled users.")],
    stickers: Annotated[
        bool, typer.Option("--stickers", help="Run the whole pipeline and judge the chosen stickers too.")
    ] = False,
    sheet: Annotated[
        Path | None, typer.Option("--sheet", help="With --stickers: a PNG of the chosen stickers.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Character hit rate, character top-1, mood accuracy and seconds per user (cold, no cache); with
    --stickers also how often the chosen sticker shows the expected character and mood."""
    from pmg_engine.evaluation import evaluate_personas, load_personas

    try:
        personas = load_personas(_existing(file))
    except ValueError as error:
        fail(str(error))
    if sheet is not None and not stickers:
        fail("--sheet needs --stickers", code=2)
    settings = load_settings()
    with Progress(transient=True, disable=as_json) as progress:
        if stickers:
            from bot.composition import running_service, sticker_job
            from bot.sticker_eval import evaluate_persona_stickers
            from pmg_engine.contact_sheet import contact_sheet

            stage1, stage2 = load_engines(settings)
            task = progress.add_task("making stickers", total=len(personas))

            async def evaluate() -> tuple[dict[str, Any], list[tuple[Image.Image, str]]]:
                async with running_service(stage1, stage2, settings) as service:
                    return await evaluate_persona_stickers(
                        service,
                        sticker_job(settings),
                        personas,
                        alpha=settings.alpha,
                        progress=lambda done: progress.update(task, completed=done),
                    )

            report, chosen = asyncio.run(evaluate())
            if sheet is not None and chosen:
                contact_sheet(
                    [image for image, _ in chosen],
                    [user for _, user in chosen],
                    sheet,
                    columns=min(6, len(chosen)),
                    title=f"chosen stickers, profile {settings.profile}",
                )
                report["sheet"] = str(sheet)
        else:
            engine = load_keyword_engine(settings)
            task = progress.add_task("evaluating users", total=len(personas))
            report = evaluate_personas(engine, personas, lambda done: progress.update(task, completed=done))
    if as_json:
        out.print_json(json.dumps(report))
        return
    _print_personas(report)


def _print_personas(report: dict[str, Any]) -> None:
    stickers = "sticker_character_rate" in report
    table = Table("user", "character", "mood", "preference keywords", "target keywords", "s")
    if stickers:
        table.add_column("sticker shows")
    for row in report["users"]:
        cells = [
            row["id"],
            ("[green]" if row["character_top1"] else "[yellow]" if row["character_hit"] else "[red]")
            + "/".join(row["expected_character"]),
            ("[green]" if row["mood_correct"] else "[red]") + f"{row['mood']} ({row['expected_mood']})",
            ", ".join(row["preference_keywords"]),
            ", ".join(row["target_keywords"]),
            f"{row['seconds']:.2f}",
        ]
        if stickers:
            shown = [name for name in ("character", "mood") if row[f"sticker_{name}"]]
            cells.append(" + ".join(shown) or "[red]neither")
        table.add_row(*cells)
    out.print(table)
    line = (
        f"n={report['n']}  character hit {report['character_hit_rate']:.3f}  "
        f"top-1 {report['character_top1_rate']:.3f}  mood {report['mood_accuracy']:.3f}  "
        f"{report['seconds_per_user']:.2f} s/user"
    )
    if stickers:
        line += (
            f"  sticker character {report['sticker_character_rate']:.3f}"
            f"  sticker mood {report['sticker_mood_rate']:.3f}"
        )
    out.print(line, highlight=False)
    if report.get("sheet"):
        out.print(f"contact sheet: {report['sheet']}", highlight=False)


@eval_app.command("meld")
def eval_meld(
    file: Annotated[Path, typer.Argument(help="A MELD csv (Utterance, Emotion columns).")],
    limit: Annotated[int | None, typer.Option(help="Only the first N utterances.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Mood accuracy and weighted F1 over MELD's 7 labels (love→joy, tired→sadness), with nade if installed."""
    from pmg_engine.evaluation import evaluate_meld, load_meld, nade_baseline

    try:
        rows = load_meld(_existing(file), limit)
    except (KeyError, ValueError) as error:
        fail(f"{file} is not a MELD csv: {error}")
    engine = load_keyword_engine(load_settings())
    report: dict[str, Any] = {"pmg": evaluate_meld(engine.mood_model, rows)}
    report["nade"] = nade_baseline(rows)
    if as_json:
        out.print_json(json.dumps(report))
        return
    for name, scores in report.items():
        if scores is None:
            out.print(f"{name:>5}: not installed (pip install nade) — no baseline", highlight=False)
        else:
            out.print(
                f"{name:>5}: n={scores['n']}  accuracy {scores['accuracy']:.3f}  weighted F1 {scores['weighted_f1']:.3f}",
                highlight=False,
            )
