"""`pmg eval`: quality bars on labelled personas (keywords, mood, stickers), and mood on MELD, GoEmotions and
the challenge set beside the nade baseline."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from bot.cli_support import err, fail, load_engines, load_keyword_engine, load_mood_model, load_settings, out

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
    from pmg_engine.evaluation import evaluate_personas, load_personas, nade_mood_accuracy

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
            report["nade_mood_accuracy"] = nade_mood_accuracy(personas)
        else:
            engine = load_keyword_engine(settings)
            task = progress.add_task("evaluating users", total=len(personas))
            report = evaluate_personas(engine, personas, lambda done: progress.update(task, completed=done))
    if as_json:
        out.print_json(json.dumps(report))
        return
    _print_personas(report)


def _nade_mood(accuracy: float | None) -> str:
    return "nade not installed" if accuracy is None else f"nade {accuracy:.3f}"


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
        f"top-1 {report['character_top1_rate']:.3f}  mood {report['mood_accuracy']:.3f} "
        f"({_nade_mood(report['nade_mood_accuracy'])})  {report['seconds_per_user']:.2f} s/user"
    )
    if stickers:
        line += (
            f"  sticker character {report['sticker_character_rate']:.3f}"
            f"  sticker mood {report['sticker_mood_rate']:.3f}"
        )
    out.print(line, highlight=False)
    if report.get("sheet"):
        out.print(f"contact sheet: {report['sheet']}", highlight=False)


LimitOption = Annotated[int | None, typer.Option(min=1, help="Only the first N examples.")]


@eval_app.command("meld")
def eval_meld(
    file: Annotated[
        Path, typer.Argument(help="A MELD csv (Utterance, Speaker, Emotion, Dialogue_ID columns).")
    ],
    limit: LimitOption = None,
    context: Annotated[
        bool,
        typer.Option(
            "--context", help="Read each utterance after its speaker's earlier turns in the dialogue."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Ours beside nade on MELD's seven emotions (love→joy, tired→sadness): accuracy, macro and weighted
    F1, F1 per emotion and our confusion matrix."""
    from pmg_engine.evaluation import MELD_LABELS, TO_MELD, compare_moods, load_meld, meld_conversations

    try:
        rows = load_meld(_existing(file), limit)
    except (ValueError, csv.Error) as error:
        fail(f"{file} is not a MELD csv: {error}")
    settings = load_settings()
    mood_model = load_mood_model(settings)
    conversations = meld_conversations(rows, context=context, turns=settings.conversation_turns)
    with err.status(f"reading {len(rows)} utterances with ours and nade"):
        report = compare_moods(
            mood_model, conversations, [row.emotion for row in rows], MELD_LABELS, to_label=TO_MELD
        )
    _print_moods(report, as_json)


@eval_app.command("goemotions")
def eval_goemotions(
    file: Annotated[
        Path,
        typer.Argument(
            help="A GoEmotions split, e.g. ../shared/data/goemotions/test.tsv (emotions.txt beside it)."
        ),
    ],
    limit: LimitOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ours beside nade on the GoEmotions comments whose labels map to one of our moods (it has no
    tired): accuracy, macro and weighted F1, F1 per mood and our confusion matrix."""
    from pmg_engine.evaluation import compare_moods
    from pmg_engine.mood_data import load_goemotions
    from pmg_engine.mood_scores import labels_in

    try:
        rows = load_goemotions(_existing(file))[:limit]
    except (OSError, ValueError, IndexError, csv.Error) as error:
        fail(f"{file} is not a GoEmotions split: {error}")
    gold = [row.mood for row in rows]
    labels = labels_in(gold)
    mood_model = load_mood_model(load_settings())
    with err.status(f"reading {len(rows)} comments with ours and nade"):
        report = compare_moods(mood_model, [[row.text] for row in rows], gold, labels)
    _print_moods(report, as_json)


@eval_app.command("challenges")
def eval_challenges(
    file: Annotated[
        Path | None,
        typer.Argument(help="A kind, mood, conversation TSV; the packaged challenge set if omitted."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Ours beside nade on conversations written to be hard (negation, sarcasm, a mood that shifts, ...):
    the scores on all nine moods, accuracy per kind of challenge and our confusion matrix."""
    from pmg_engine.evaluation import evaluate_challenges, load_challenges
    from pmg_engine.mood_data import packaged

    path = file or packaged("mood_challenges.tsv")
    try:
        challenges = load_challenges(_existing(path))
    except (ValueError, csv.Error) as error:
        fail(f"{path} is not a challenge set: {error}")
    mood_model = load_mood_model(load_settings())
    with err.status(f"reading {len(challenges)} challenges with ours and nade"):
        report = evaluate_challenges(mood_model, challenges)
    _print_moods(report, as_json)


@eval_app.command("feedback")
def eval_feedback(as_json: JsonOption = False) -> None:
    """What users did with their stickers (PMG_DB_URL's store): choices per weight set, how often z's own
    pick was the one chosen, the users' personal α, the reroll rate."""
    from bot.feedback_report import feedback_report, report_lines

    settings = load_settings()

    async def events() -> list[Any]:
        from bot.composition import open_store

        store = await open_store(settings)
        try:
            return await store.feedback_events()
        finally:
            await store.close()

    report = feedback_report(asyncio.run(events()), settings.alpha)
    if as_json:
        out.print_json(json.dumps(report))
        return
    for line in report_lines(report):
        out.print(line, highlight=False)


def _print_moods(report: dict[str, Any], as_json: bool) -> None:
    """Both models' scores, their F1 per mood, ours confused, and the accuracy per kind where there is one."""
    if as_json:
        out.print_json(json.dumps(report))
        return
    models = {name: report[name] for name in ("pmg", "nade")}
    table = Table("model", "n", "accuracy", "macro-F1", "weighted F1", "ms/conversation")
    for name, scores in models.items():
        if scores is None:
            table.add_row(name, "[yellow]not installed (pip install nade)")
            continue
        table.add_row(
            name,
            str(scores["n"]),
            *(f"{scores[metric]:.3f}" for metric in ("accuracy", "macro_f1", "weighted_f1")),
            f"{scores['seconds_per_conversation'] * 1000:.1f}",
        )
    out.print(table)
    labels = list(report["pmg"]["per_mood_f1"])
    per_mood = Table("F1", *labels, title="F1 per mood")
    for name, scores in models.items():
        if scores is not None:
            per_mood.add_row(name, *(f"{scores['per_mood_f1'][label]:.3f}" for label in labels))
    out.print(per_mood)
    out.print(_confusion_table(report["pmg"]["confusion"], labels))
    if "per_kind" in report:
        kinds = Table("kind", "n", "pmg", "nade", title="accuracy per kind")
        for kind, row in report["per_kind"].items():
            cells = ("-" if row[name] is None else f"{row[name]:.3f}" for name in models)
            kinds.add_row(kind, str(row["n"]), *cells)
        out.print(kinds)


def _confusion_table(confusion: dict[str, dict[str, int]], labels: list[str]) -> Table:
    """Rows gold, columns predicted; a mood we predicted outside `labels` (tired on GoEmotions) gets a column."""
    predicted = labels + sorted({mood for row in confusion.values() for mood in row} - set(labels))
    table = Table("gold \\ ours", *predicted, title="our confusion")
    for gold in labels:
        counts = confusion.get(gold, {})
        table.add_row(
            gold,
            *(f"{'[green]' if mood == gold else ''}{counts.get(mood, 0) or '[dim]·'}" for mood in predicted),
        )
    return table
