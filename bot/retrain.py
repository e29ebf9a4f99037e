"""The admin `retrain` job: soft preference embeddings trained on consenting users' stickers, checked on
held-out users, promoted only when they beat what serves now. Runs off the serving path (`pmg retrain`)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.behavior import BlobUnreadable
from bot.chat import STICKER_FORMATS
from bot.personalization import behaviors_from_history
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.store import BehaviorStore
    from pmg_engine.soft_training import Progress, SoftExample

log = logging.getLogger(__name__)

CHECKPOINT_MIME = "application/vnd.pmg.soft-prompt+safetensors"
# A generated sticker a user chose is drawn into a batch half as often as a user's own last sticker:
# it says what they like, but it is the generator's own output, and learning from it alone would
# reinforce what the model already draws.
CHOSEN_WEIGHT = 0.5


class RetrainError(Exception):
    """The job cannot run; the message says what to do."""


@dataclass
class RetrainReport:
    """What `pmg retrain --json` prints and the admin is told."""

    examples: int = 0
    examples_last_sticker: int = 0  # the paper's: a user's last sticker, the earlier ones as input
    examples_chosen: int = 0  # generated stickers users chose or added to a pack
    chosen_weight: float = CHOSEN_WEIGHT
    users: int = 0
    validation_users: int = 0
    steps: int = 0
    loss_first: float | None = None
    loss_last: float | None = None
    val_loss_before: float | None = None
    val_loss_after: float | None = None
    checkpoint: str | None = None  # version
    promoted: bool = False
    status: str = "done"  # done | cancelled
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Examples:
    last: list[SoftExample]  # the paper's: each user's last sticker, the earlier behaviors as input
    chosen: list[SoftExample]  # generated stickers users chose or added to a pack, at CHOSEN_WEIGHT

    @property
    def users(self) -> int:
        return len({e.user for e in self.last + self.chosen})


async def load_examples(store: BehaviorStore, *, history_items: int, notes: list[str]) -> Examples:
    """The paper's split for every consenting user with ≥ 2 sticker images, then one example per generated
    sticker such a user chose (weight CHOSEN_WEIGHT); unreadable images are skipped."""
    from PIL import Image, UnidentifiedImageError

    from pmg_engine.preferences import evidence_only_keywords
    from pmg_engine.soft_training import SoftExample

    examples = Examples([], [])
    unreadable = 0
    sources = (
        (store.iter_training_examples(history_limit=history_items), examples.last, 1.0),
        (store.iter_chosen_examples(history_limit=history_items), examples.chosen, CHOSEN_WEIGHT),
    )
    for found, kept, weight in sources:
        async for example in found:
            try:
                image = Image.open(
                    io.BytesIO(await store.read_blob(example.target_image_sha256)), formats=STICKER_FORMATS
                )
                image.load()
            except (OSError, UnidentifiedImageError, BlobUnreadable) as error:
                log.warning("a training example was skipped: %s", error)
                unreadable += 1
                continue
            behaviors = behaviors_from_history(example.history, [])
            keywords = example.keywords if example.keywords is not None else evidence_only_keywords(behaviors)
            kept.append(SoftExample(str(example.user), behaviors, keywords, image, weight))
    if unreadable:  # a count, never who: the report is stored and outlives a user's /forget
        notes.append(f"skipped {unreadable} example(s): their sticker image is unreadable")
    return examples


def split_users(
    examples: list[SoftExample], fraction: float, seed: int
) -> tuple[list[SoftExample], list[SoftExample]]:
    """Held-out users (at least one when there are two or more); with one user, it is both sets."""
    shuffled = sorted(examples, key=lambda e: e.user)
    random.Random(seed).shuffle(shuffled)
    held = min(len(shuffled) - 1, max(1, round(fraction * len(shuffled)))) if fraction > 0 else 0
    return (shuffled[held:], shuffled[:held]) if held else (shuffled, shuffled)


class ResumeState:
    """The snapshot `--resume` continues from: trainable tensors, optimizer state and the step."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.weights, self.optimizer, self.info = (
            folder / "resume.safetensors",
            folder / "resume-optimizer.pt",
            folder / "resume.json",
        )

    def save(self, model: Any, step: int, optimizer_state: dict[str, object], plan: dict[str, Any]) -> None:
        import torch

        self.folder.mkdir(parents=True, exist_ok=True)
        model.save(self.weights, {"kind": "resume"})
        torch.save(optimizer_state, self.optimizer)
        self.info.write_text(json.dumps({"step": step, "plan": plan}))

    def load(self, model: Any, fingerprint: str) -> tuple[int, dict[str, object], dict[str, Any]]:
        import torch

        if not self.info.is_file():
            raise RetrainError("nothing to resume: no interrupted `pmg retrain` left a snapshot")
        info = json.loads(self.info.read_text())
        model.load(self.weights, base_fingerprint=fingerprint)
        return int(info["step"]), torch.load(self.optimizer, weights_only=True), info["plan"]

    def clear(self) -> None:
        for path in (self.weights, self.optimizer, self.info):
            path.unlink(missing_ok=True)


def _train(
    settings: Settings,
    examples: Examples,
    promoted: tuple[str, Path] | None,
    report: RetrainReport,
    *,
    version: str,
    steps: int,
    resume: bool,
    progress: Callable[[Progress], None],
    should_stop: Callable[[], bool],
) -> Path | None:
    """The torch part, in a worker thread: returns the new checkpoint file, or None when cancelled."""
    from bot.composition import diffusion_generator
    from pmg_engine.llm import ChatLLM
    from pmg_engine.soft_prompt import CheckpointError, SoftPromptModel
    from pmg_engine.soft_training import DiffusionObjective, SoftTrainer, TrainingPlan

    llm = ChatLLM.load(settings.llm_model, settings.model_cache_dir / "llm", device=settings.llm_device)
    generator = diffusion_generator(settings)
    fingerprint = llm.weights_fingerprint
    text_width = generator.pipeline.text_encoder.config.hidden_size

    def fresh() -> SoftPromptModel:
        return SoftPromptModel(
            llm,
            tokens=settings.soft_tokens,
            prefixes=settings.soft_prefixes,
            text_width=text_width,
            seed=settings.seed,
        )

    objective = DiffusionObjective(generator.pipeline, side=generator.options.size)
    # Held-out users are drawn among the last-sticker examples, which alone judge promotion; a held-out
    # user's chosen stickers are not trained on either.
    train_set, validation_set = split_users(examples.last, settings.train_val_fraction, settings.seed)
    one_user = validation_set is train_set
    held_out = set() if one_user else {e.user for e in validation_set}
    train_set = train_set + [e for e in examples.chosen if e.user not in held_out]
    report.validation_users = 0 if one_user else len(validation_set)
    if one_user:
        report.notes.append("one user only: the promotion check uses their own example")

    serving = fresh()
    serving_soft = False  # no checkpoint: stickers are conditioned on the keywords alone
    if promoted is not None:
        try:
            serving.load(promoted[1], base_fingerprint=fingerprint)
            serving_soft = True
        except CheckpointError as error:
            report.notes.append(
                f"the checkpoint in service ({promoted[0]}) does not fit these models: {error}"
            )
    report.val_loss_before = SoftTrainer(serving, objective, validation_set).validation_loss(
        soft=serving_soft
    )

    model = serving if serving_soft else fresh()  # continue from the checkpoint in service
    snapshots = ResumeState(settings.data_dir / "training")
    plan = TrainingPlan(steps, settings.train_batch_size, settings.train_learning_rate, settings.seed)
    start_step, optimizer_state = 0, None
    if resume:
        start_step, optimizer_state, saved_plan = snapshots.load(model, fingerprint)
        plan = TrainingPlan(**saved_plan)
        report.notes.append(f"resumed at step {start_step} of {plan.steps}")
    trainer = SoftTrainer(model, objective, train_set)
    result = trainer.train(
        plan,
        start_step=start_step,
        optimizer_state=optimizer_state,
        progress=progress,
        should_stop=should_stop,
        snapshot=lambda step, state: snapshots.save(model, step, state, asdict(plan)),
        snapshot_every=settings.train_checkpoint_every,
    )
    report.steps = result.steps_done
    if result.losses:
        report.loss_first, report.loss_last = result.losses[0], result.losses[-1]
    if result.stopped:
        snapshots.save(model, result.steps_done, result.optimizer_state, asdict(plan))
        report.status = "cancelled"
        return None
    report.val_loss_after = SoftTrainer(model, objective, validation_set).validation_loss()
    report.checkpoint = version
    path = settings.data_dir / "training" / f"{report.checkpoint}.safetensors"
    model.save(
        path,
        {
            "version": report.checkpoint,
            "base_llm": llm.name,
            "base_llm_sha256": fingerprint,
            "generator": generator.source,
            "examples": report.examples,
            "users": report.users,
            "steps": result.steps_done,
            "val_loss_before": report.val_loss_before,
            "val_loss_after": report.val_loss_after,
        },
    )
    snapshots.clear()
    return path


async def retrain(
    store: BehaviorStore,
    settings: Settings,
    *,
    steps: int | None = None,
    resume: bool = False,
    progress: Callable[[Progress], None] = lambda report: None,
    should_stop: Callable[[], bool] = lambda: False,
    found: Callable[[RetrainReport], None] = lambda report: None,
) -> RetrainReport:
    """Train, check on held-out users, store the checkpoint and promote it only if it beats what serves."""
    from pmg_engine.soft_prompt import new_version

    if settings.profile == "offline":
        raise RetrainError(
            "the offline profile composes emoji art and has no text space for soft embeddings; "
            "retrain for a diffusion profile: `pmg retrain --profile tiny` (or sd15 on a GPU host)"
        )
    started = time.perf_counter()
    report = RetrainReport()
    examples = await load_examples(store, history_items=settings.history_items, notes=report.notes)
    report.examples_last_sticker, report.examples_chosen = len(examples.last), len(examples.chosen)
    report.examples, report.users = len(examples.last) + len(examples.chosen), examples.users
    found(report)
    if not report.examples_last_sticker:
        raise RetrainError(
            "no training examples: a user counts once they consented to training and sent ≥ 2 stickers with images"
        )
    promoted = await store.promoted_checkpoint()
    promoted_path = (promoted[0], await store.blob_file(promoted[1])) if promoted else None
    config = {"profile": settings.profile, "steps": steps or settings.train_steps, "resume": resume}
    version = new_version()
    run_id = await store.start_training_run(version, config)
    try:
        path = await asyncio.to_thread(
            _train,
            settings,
            examples,
            promoted_path,
            report,
            version=version,
            steps=steps or settings.train_steps,
            resume=resume,
            progress=progress,
            should_stop=should_stop,
        )
    except Exception as error:
        await store.finish_training_run(run_id, status="failed", metrics=report.as_dict(), error=str(error))
        raise
    sha256 = None
    if path is not None:
        sha256 = await store.put_blob(path.read_bytes(), CHECKPOINT_MIME)
        before, after = report.val_loss_before, report.val_loss_after
        report.promoted = before is not None and after is not None and after < before
        if not report.promoted:
            report.notes.append(
                "the new checkpoint is not better on held-out users: the one in service stays"
            )
    report.seconds = time.perf_counter() - started
    await store.finish_training_run(
        run_id,
        status=report.status,
        metrics=report.as_dict(),
        checkpoint_sha256=sha256,
        promoted=report.promoted,
    )
    return report


class RetrainLock:
    """One retrain at a time per data dir; the OS releases the lock if the process dies."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "training" / "retrain.lock"
        self.handle: io.TextIOWrapper | None = None

    def __enter__(self) -> RetrainLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RetrainError(f"a retrain is already running ({holder}); wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.close()
