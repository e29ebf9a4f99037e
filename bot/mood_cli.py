"""`pmg mood train`: the reproducible command that makes the mood head the package ships."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from bot.cli_support import err, fail, load_settings, out

mood_app = typer.Typer(help="The mood model: train the head the package ships.", no_args_is_help=True)

GOEMOTIONS = Path("../shared/data/goemotions")


@mood_app.command("train")
def train(
    goemotions: Annotated[
        Path, typer.Option(help="GoEmotions folder (train.tsv, dev.tsv, emotions.txt).")
    ] = GOEMOTIONS,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the head; default: the one the package ships."),
    ] = None,
    epochs: Annotated[float, typer.Option(min=0.001, help="Passes over the training data.")] = 1.0,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Only the first N rows of each GoEmotions split (a quick try).")
    ] = None,
    seed: int = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """Tune the embedder (LoRA) and a linear head on GoEmotions + the shipped lines, once per member,
    calibrate the neutral bias on GoEmotions dev, and write the head with its provenance (≈ 60 min on
    2 cores)."""
    from pmg_engine.model_sources import ModelUnavailableError
    from pmg_engine.mood import SHIPPED_HEAD, SentenceEmbedder
    from pmg_engine.mood_data import packaged
    from pmg_engine.mood_training import train_mood_head, training_set

    for name in ("train.tsv", "dev.tsv", "emotions.txt"):
        if not (goemotions / name).is_file():
            fail(f"{goemotions / name} is missing: --goemotions takes the GoEmotions folder")
    settings = load_settings()
    try:
        data = training_set(goemotions, limit=limit)
        embedder = SentenceEmbedder(settings.text_embedder_model)
    except ValueError as error:
        fail(str(error))
    except ModelUnavailableError as error:
        fail(str(error))
    target = out_file or packaged(SHIPPED_HEAD)
    with Progress(console=err) as progress:  # on stderr: --json keeps stdout for the report
        task = progress.add_task(f"tuning {len(data.members)} members", total=None)
        model, report = train_mood_head(
            embedder,
            data,
            epochs=epochs,
            seed=seed,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    model.head.save(target)
    report["out"] = str(target)
    if as_json:
        out.print_json(json.dumps(report))
        return
    dev = report["dev"]
    out.print(
        f"wrote {target}: dev macro-F1 {dev['macro_f1']:.3f}, accuracy {dev['accuracy']:.3f} (n={dev['n']}), "
        f"neutral bias {report['neutral_bias']:+.1f}, {report['seconds']:.0f} s",
        highlight=False,
    )
