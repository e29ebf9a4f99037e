"""The bias-correction LLM and its training on the tiny profile: a random 2-layer Llama with SmolLM2's
tokenizer stands in for the LLM here (same code path, seconds instead of minutes); SmolLM2 itself
trains in test_retrain.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pmg_engine.behaviors import StickerSent, UserBehaviors
from pmg_engine.diffusion import DiffusionGenerator
from pmg_engine.llm import ChatLLM, weights_fingerprint
from pmg_engine.prompts import soft_prompt
from pmg_engine.random_models import TinyModels
from pmg_engine.soft_prompt import CheckpointError, SoftPromptModel
from pmg_engine.soft_training import DiffusionObjective, SoftExample, SoftTrainer, TrainingPlan
from pmg_engine.sticker_art.composer import plain_sticker

TRAINABLE = {
    "body.prompt_encoder.default.embedding.weight",
    "multimodal_tokens",
    "mapper.weight",
    "mapper.bias",
}


@pytest.fixture(scope="module")
def tiny_llm(llm: ChatLLM, tmp_path_factory: pytest.TempPathFactory) -> ChatLLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(llm.tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    folder = tmp_path_factory.mktemp("tiny-llm")
    LlamaForCausalLM(config).eval().save_pretrained(folder)
    return ChatLLM(
        LlamaForCausalLM.from_pretrained(folder).eval(), llm.tokenizer, "tiny-random-llama", folder, 0.0
    )


@pytest.fixture(scope="module")
def objective(tiny_models: TinyModels) -> DiffusionObjective:
    return DiffusionObjective(
        DiffusionGenerator.load(str(tiny_models.sd_folder), safety_checker=False).pipeline
    )


@pytest.fixture(scope="module")
def examples() -> list[SoftExample]:
    fans = [
        ("cat-fan", "🐱", "cat"),
        ("frog-fan", "🐸", "frog"),
        ("dog-fan", "🐶", "dog"),
        ("panda-fan", "🐼", "panda"),
    ]
    return [
        SoftExample(user, UserBehaviors([StickerSent(emoji)] * 3), [word], plain_sticker(emoji, 128))
        for user, emoji, word in fans
    ]


def model(tiny_llm: ChatLLM, width: int = 32) -> SoftPromptModel:
    return SoftPromptModel(tiny_llm, tokens=4, prefixes=4, text_width=width, seed=0)


def test_soft_embeddings_have_l_rows_of_the_generators_width(tiny_llm: ChatLLM) -> None:
    prompts = [
        soft_prompt(UserBehaviors([StickerSent("🐱")])),
        soft_prompt(UserBehaviors([StickerSent("🐸")] * 5)),
    ]
    e_m = model(tiny_llm)(prompts)
    assert e_m.shape == (2, 4, 32)
    assert {name for name, p in model(tiny_llm).named_parameters() if p.requires_grad} == TRAINABLE


def test_training_lowers_the_loss_and_changes_only_the_trainable_parts(
    tiny_llm: ChatLLM, objective: DiffusionObjective, examples: list[SoftExample]
) -> None:
    soft = model(tiny_llm)
    frozen = {
        "llm": {n: p.detach().clone() for n, p in soft.named_parameters() if not p.requires_grad},
        "unet": {n: p.detach().clone() for n, p in objective.pipeline.unet.named_parameters()},
    }
    before = {n: p.detach().clone() for n, p in soft.named_parameters() if p.requires_grad}
    trainer = SoftTrainer(soft, objective, examples)
    val_before = trainer.validation_loss()

    result = trainer.train(TrainingPlan(steps=50, batch_size=4, learning_rate=1e-2))

    assert len(result.losses) == 50 and result.steps_done == 50
    assert sum(result.losses[-10:]) < sum(result.losses[:10])
    assert trainer.validation_loss() < val_before
    assert all(not torch.equal(before[n], p) for n, p in soft.named_parameters() if p.requires_grad)
    assert all(torch.equal(frozen["llm"][n], p) for n, p in soft.named_parameters() if not p.requires_grad)
    assert all(torch.equal(frozen["unet"][n], p) for n, p in objective.pipeline.unet.named_parameters())


def test_save_then_load_gives_identical_soft_embeddings(tiny_llm: ChatLLM, tmp_path: Path) -> None:
    trained = model(tiny_llm)
    with torch.no_grad():
        trained.mapper.weight.add_(0.5)  # not the fresh initialisation
    prompts = [soft_prompt(UserBehaviors([StickerSent("🐼")] * 2))]
    path = tmp_path / "v1.safetensors"
    fingerprint = weights_fingerprint(tiny_llm.model)
    trained.save(path, {"version": "v1", "base_llm_sha256": fingerprint})

    loaded = model(tiny_llm)
    manifest = loaded.load(path, base_fingerprint=fingerprint)

    assert manifest["version"] == "v1" and manifest["tokens"] == 4 and manifest["text_width"] == 32
    with torch.no_grad():
        assert torch.equal(trained(prompts), loaded(prompts))


def test_resume_continues_from_the_saved_step(
    tiny_llm: ChatLLM, objective: DiffusionObjective, examples: list[SoftExample]
) -> None:
    snapshots: list[tuple[int, dict[str, object]]] = []
    plan = TrainingPlan(steps=10, batch_size=2, learning_rate=1e-2)
    first = SoftTrainer(model(tiny_llm), objective, examples).train(
        plan,
        should_stop=lambda: len(snapshots) > 0,
        snapshot=lambda s, o: snapshots.append((s, o)),
        snapshot_every=4,
    )
    assert first.stopped and first.steps_done == 4 and snapshots[0][0] == 4

    step, optimizer_state = snapshots[0]
    resumed = SoftTrainer(model(tiny_llm), objective, examples).train(
        plan, start_step=step, optimizer_state=optimizer_state
    )
    assert not resumed.stopped and resumed.steps_done == 10 and len(resumed.losses) == 6


def test_corrupted_or_mismatched_checkpoints_are_refused(tiny_llm: ChatLLM, tmp_path: Path) -> None:
    fingerprint = weights_fingerprint(tiny_llm.model)
    good = tmp_path / "good.safetensors"
    model(tiny_llm).save(good, {"base_llm_sha256": fingerprint})

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable pmg checkpoint"):
        model(tiny_llm).load(garbage, base_fingerprint=fingerprint)

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(CheckpointError):
        model(tiny_llm).load(truncated, base_fingerprint=fingerprint)

    with pytest.raises(CheckpointError, match="text_width: checkpoint 32, here 16"):
        model(tiny_llm, width=16).load(good, base_fingerprint=fingerprint)
    with pytest.raises(CheckpointError, match="base_llm_sha256"):
        model(tiny_llm).load(good, base_fingerprint="another-model")
