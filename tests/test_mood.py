"""The mood model: its data (the shipped lines, GoEmotions' label table), the shipped head and its
provenance, the fallback for another embedder, and what it says about real conversations."""

from __future__ import annotations

import copy
import json
import logging
from collections import Counter
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from bot.cli import app
from pmg_engine.llm import weights_fingerprint
from pmg_engine.mood import (
    SHIPPED_HEAD,
    SHIPPED_SENTENCES,
    MoodHead,
    MoodMember,
    MoodModel,
    SentenceEmbedder,
    mood_text,
    shipped_sentences,
)
from pmg_engine.mood_data import (
    GOEMOTIONS_TO_MOOD,
    MOODS,
    file_sha256,
    goemotions_mood,
    load_goemotions,
    load_tsv,
    packaged,
)
from pmg_engine.mood_training import MEMBERS, SHIPPED_REPEAT, calibrate_neutral, class_weights
from pmg_engine.target import MOOD_LOOKS, fits_mood, target_keywords

GOEMOTIONS_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "goemotions"
EMOTIONS = list(GOEMOTIONS_TO_MOOD)


def test_the_shipped_lines_are_balanced_unique_and_agree_where_they_repeat() -> None:
    files = {name: load_tsv(packaged(name)) for name in SHIPPED_SENTENCES}

    for rows in files.values():
        counts = Counter(row.mood for row in rows)
        assert set(counts) == set(MOODS)
        assert len(set(counts.values())) == 1 and counts["joy"] >= 15  # the sarcasm file: 15 lines per mood
        assert len({row.text.lower() for row in rows}) == len(rows)
    # A few short spoken lines ("Mm-hm.") are in both files: with the same mood, never with two.
    moods_of: dict[str, set[str]] = {}
    for rows in files.values():
        for row in rows:
            moods_of.setdefault(row.text.lower(), set()).add(row.mood)
    assert all(len(moods) == 1 for moods in moods_of.values())


def test_a_file_with_an_unknown_mood_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "moods.tsv"
    path.write_text("mood\ttext\nhangry\tfeed me\n")

    with pytest.raises(ValueError, match="unknown moods"):
        load_tsv(path)


def test_goemotions_rows_keep_one_mood_or_are_left_out() -> None:
    assert set(GOEMOTIONS_TO_MOOD.values()) - {None} == set(MOODS) - {"tired"}
    assert goemotions_mood(["grief", "remorse"]) == "sadness"
    assert goemotions_mood(["annoyance"]) == "anger"
    assert goemotions_mood(["joy", "sadness"]) is None  # two moods in one comment
    assert goemotions_mood(["approval"]) is None  # no face to draw
    assert goemotions_mood(["gratitude", "approval"]) is None  # partly unmapped: not surely joy


def _goemotions_folder(folder: Path, rows: dict[str, list[tuple[str, list[str]]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "emotions.txt").write_text("\n".join(EMOTIONS) + "\n")
    for split, lines in rows.items():
        body = "".join(
            f"{text}\t{','.join(str(EMOTIONS.index(label)) for label in labels)}\tid{n}\n"
            for n, (text, labels) in enumerate(lines)
        )
        (folder / f"{split}.tsv").write_text(body)
    return folder


def test_a_goemotions_split_loads_its_mapped_rows_and_names_a_bad_line(tmp_path: Path) -> None:
    folder = _goemotions_folder(
        tmp_path / "ge",
        {"train": [("so happy for you", ["joy"]), ("ok", ["neutral"]), ("yes but no", ["joy", "anger"])]},
    )

    assert [(row.mood, row.text) for row in load_goemotions(folder / "train.tsv")] == [
        ("joy", "so happy for you"),
        ("neutral", "ok"),
    ]
    (folder / "bad.tsv").write_text("only text\n")
    with pytest.raises(ValueError, match=r"bad.tsv:1: expected text, emotion ids, comment id"):
        load_goemotions(folder / "bad.tsv")


def test_the_shipped_head_was_trained_on_the_files_as_they_are() -> None:
    """Change a shipped sentence, the label table or GoEmotions and this fails until `pmg mood train` reruns."""
    head = MoodHead.load(packaged(SHIPPED_HEAD))
    provenance = head.provenance

    for name in SHIPPED_SENTENCES:
        assert provenance["data"][name] == file_sha256(packaged(name))
    assert provenance["label_map"] == GOEMOTIONS_TO_MOOD
    if GOEMOTIONS_DIR.is_dir():
        for name in ("train.tsv", "dev.tsv", "emotions.txt"):
            assert provenance["data"][f"goemotions/{name}"] == file_sha256(GOEMOTIONS_DIR / name)
    assert len(head.members) == len(MEMBERS) and all(member.lora for member in head.members)
    assert all(member.weight.shape[0] == len(MOODS) for member in head.members)
    assert provenance["dev"]["macro_f1"] > 0.5
    assert packaged(SHIPPED_HEAD).stat().st_size < 4_000_000


def test_a_head_keeps_its_lora_in_half_precision_and_loads_it_as_float32(tmp_path: Path) -> None:
    torch.manual_seed(0)
    lora = {"base_model.model.encoder.layer.0.attention.self.query.lora_A.weight": torch.randn(8, 384)}
    member = MoodMember(lora, torch.randn(len(MOODS), 384), torch.randn(len(MOODS)))
    other = MoodMember(
        {name: t.clone() for name, t in lora.items()}, member.weight.clone(), member.bias.clone()
    )
    head = MoodHead([member, other], 0.5, "abc", {"recipe": "test"})

    head.save(tmp_path / "head.safetensors")
    loaded = MoodHead.load(tmp_path / "head.safetensors")

    [(name, tensor)] = loaded.members[1].lora.items()
    assert tensor.dtype == torch.float32 and name in lora
    assert torch.allclose(tensor, lora[name], rtol=1e-3, atol=1e-4) and not torch.equal(tensor, lora[name])
    assert torch.equal(loaded.members[0].weight, member.weight)  # the head itself stays exact
    assert (loaded.neutral_bias, loaded.provenance) == (0.5, {"recipe": "test"})


def test_the_shipped_head_loads_without_training(
    embedder: SentenceEmbedder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "mood"
    with caplog.at_level(logging.INFO, logger="pmg_engine.mood"):
        model = MoodModel.load(embedder, cache)

    assert caplog.records == []
    assert not cache.exists()  # nothing trained, nothing cached
    assert len(model.encoders) == len(model.head.members) == len(MEMBERS)
    # Each member's tuned weights are the mood model's own copy: the sticker scorer's embeddings do not move.
    for encoder in model.encoders:
        assert model.head.encoder_fingerprint == encoder.fingerprint
        assert weights_fingerprint(encoder.transformer) != encoder.fingerprint
    assert weights_fingerprint(model.encoders[0].transformer) != weights_fingerprint(
        model.encoders[1].transformer
    )
    assert weights_fingerprint(embedder.transformer) == model.head.encoder_fingerprint


def test_another_embedder_gets_a_head_trained_on_the_shipped_sentences_once(
    embedder: SentenceEmbedder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = copy.deepcopy(embedder)
    with torch.no_grad():
        next(other.transformer.parameters()).view(-1)[0] += 0.5  # index 0 is in every fingerprint sample

    with caplog.at_level(logging.INFO, logger="pmg_engine.mood"):
        first = MoodModel.load(other, tmp_path)
    assert "trained on another embedder" in caplog.text
    assert "training a mood head for this embedder" in caplog.text
    [cached] = tmp_path.glob("mood-*.safetensors")
    assert [member.lora for member in first.head.members] == [{}] and first.head.provenance[
        "fallback"
    ] is True

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pmg_engine.mood"):
        again = MoodModel.load(other, tmp_path)
    assert "training" not in caplog.text
    lines = [["omg we won!!!"], ["ugh this smells awful"]]
    assert torch.allclose(again.scores(lines), first.scores(lines), atol=1e-5)
    assert [p.mood for p in first.predict(lines)] == ["joy", "disgust"]

    cached.write_bytes(b"not a safetensors file")
    with caplog.at_level(logging.WARNING, logger="pmg_engine.mood"):
        MoodModel.load(other, tmp_path)
    assert "retraining" in caplog.text


def test_emoji_are_read_as_their_names() -> None:
    assert mood_text("exam tomorrow 😭") == "exam tomorrow  loudly crying face"
    assert mood_text("   ") == "(nothing)"


@pytest.mark.parametrize(
    ("conversation", "moods"),
    [
        # The issue's example: a mood that changes at the end is the end's mood, not the frogs' joy.
        (
            ["🐸🐸 frogs are the best", "ugh my laptop died right before the deadline"],
            {"sadness", "anger", "tired"},
        ),
        (["I GOT THE JOB!!! starting monday", "best day ever, I'm dancing around the flat"], {"joy"}),
        (["not mad at all, best day ever"], {"joy"}),
        (["oh great, another monday. love that for me 🙃"], {"anger", "sadness", "tired", "disgust"}),
        (["meeting moved to 3pm 👍"], {"neutral"}),
        (["can you send me the pdf 📎", "thx"], {"neutral"}),
        (["they cancelled the trip. i was looking forward to it for months", "whatever."], {"sadness"}),
        (["pulled an all-nighter for the exam", "can't keep my eyes open"], {"tired"}),
    ],
)
def test_real_conversations(mood_model: MoodModel, conversation: list[str], moods: set[str]) -> None:
    [prediction] = mood_model.predict([conversation])

    assert prediction.mood in moods, prediction.probabilities


def test_the_latest_turn_outweighs_the_earlier_ones(mood_model: MoodModel) -> None:
    happy, sad = "we won the cup!!! 🥳", "my grandma passed away this morning"

    moods = [p.mood for p in mood_model.predict([[happy, sad], [sad, happy]])]

    assert moods == ["sadness", "joy"]


def test_one_pass_scores_each_conversation_as_if_alone(mood_model: MoodModel) -> None:
    conversations = [["ugh", "this smells awful"], ["yay"], ["ok", "see you at 5", "bring snacks"]]

    together = mood_model.scores(conversations)
    alone = torch.cat([mood_model.scores([c]) for c in conversations])

    assert torch.allclose(together, alone, atol=1e-4)
    assert mood_model.predict([]) == []


def test_the_neutral_bias_moves_only_neutral(mood_model: MoodModel) -> None:
    lines = [["the meeting is at 3"], ["I can't believe you did that, I'm furious"]]
    biased = MoodModel(mood_model.encoders, copy.copy(mood_model.head))
    biased.head.neutral_bias = mood_model.head.neutral_bias + 50.0

    assert [p.mood for p in biased.predict(lines)] == ["neutral", "neutral"]
    difference = biased.scores(lines) - mood_model.scores(lines)
    assert torch.allclose(difference[:, MOODS.index("neutral")], torch.tensor([50.0, 50.0]))
    assert difference[:, : MOODS.index("neutral")].abs().max() == 0


def test_calibration_picks_the_neutral_bias_with_the_best_dev_macro_f1() -> None:
    # Row 0 is neutral but its neutral score trails joy by 1.05; row 1 is joy, ahead of neutral by 1.45.
    log_probs = torch.full((2, len(MOODS)), -9.0)
    log_probs[0, MOODS.index("joy")], log_probs[0, MOODS.index("neutral")] = -0.5, -1.55
    log_probs[1, MOODS.index("joy")], log_probs[1, MOODS.index("neutral")] = -0.5, -1.95

    assert calibrate_neutral([(log_probs, ["neutral", "joy"])]) == 1.1
    # A second dev set where any bias above 1.0 turns its joy neutral: the mean over both wins.
    other = torch.full((1, len(MOODS)), -9.0)
    other[0, MOODS.index("joy")], other[0, MOODS.index("neutral")] = -0.5, -1.5
    assert calibrate_neutral([(log_probs, ["neutral", "joy"]), (other, ["joy"])]) == -2.0


def test_rare_moods_weigh_more_and_the_weights_average_one() -> None:
    labels = torch.tensor([MOODS.index("neutral")] * 90 + [MOODS.index("fear")] * 10)

    weights = class_weights(labels)

    assert weights[MOODS.index("fear")] == pytest.approx(3 * weights[MOODS.index("neutral")])
    assert float(weights[labels].mean()) == pytest.approx(1.0)


def test_pmg_mood_train_writes_a_head_with_its_provenance(tmp_path: Path) -> None:
    """A two-step run on a tiny GoEmotions-shaped folder: the mechanics, not a head worth shipping."""
    lines = [("yay we did it", ["joy"]), ("this is awful", ["disgust"]), ("see you at 5", ["neutral"])] * 3
    folder = _goemotions_folder(tmp_path / "ge", {"train": lines, "dev": lines})
    out_file = tmp_path / "head.safetensors"

    arguments = ["--goemotions", str(folder), "--out", str(out_file)]
    result = CliRunner().invoke(
        app,
        ["mood", "train", *arguments, "--epochs", "0.001", "--json"],
        env={"PMG_DATA_DIR": str(tmp_path / "data")},
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["data"]["goemotions/train.tsv"] == file_sha256(folder / "train.tsv")
    assert report["data"]["mood_sentences.tsv"] == file_sha256(packaged("mood_sentences.tsv"))
    assert report["rows"]["dev"] == 9 and len(report["recipe"]["steps"]) == len(MEMBERS)
    # Each member reads its own lines beside GoEmotions, from its own seed.
    assert report["rows"]["train"][:2] == [
        len(lines) + len(shipped_sentences(recipe.lines)) * SHIPPED_REPEAT for recipe in MEMBERS[:2]
    ]
    assert [member["seed"] for member in report["recipe"]["members"]] == [recipe.seed for recipe in MEMBERS]
    assert set(report["dev"]) >= {"macro_f1", "accuracy", "confusion"}
    assert len(report["members_dev"]) == len(MEMBERS)
    head = MoodHead.load(out_file)
    assert head.provenance["encoder"]["fingerprint"] == head.encoder_fingerprint
    assert head.neutral_bias == report["neutral_bias"] and all(member.lora for member in head.members)


def test_pmg_mood_train_names_a_missing_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["mood", "train", "--goemotions", str(tmp_path / "nope")])

    assert result.exit_code == 1
    assert "train.tsv is missing" in result.output


@pytest.mark.parametrize("mood", MOODS)
def test_target_keywords_always_count_five_and_start_with_the_emotion(mood: str) -> None:
    keywords = target_keywords(mood, "i'm sorry, mood fear, big eyes\n\nSure! Here are keywords")

    assert len(keywords) == 5
    assert keywords[0] == MOOD_LOOKS[mood][0]
    assert "big eyes" in keywords
    assert not any("sorry" in k or "mood" in k for k in keywords)


@pytest.mark.parametrize("mood", MOODS)
def test_each_moods_own_looks_fit_it(mood: str) -> None:
    assert all(fits_mood(look, mood) for look in MOOD_LOOKS[mood])


def test_an_llm_look_that_clashes_with_the_mood_gives_way_to_the_moods_own() -> None:
    assert target_keywords("sadness", "big smile, slumped, laughing") == [
        "sad",
        "slumped",
        "teary eyes",
        "frown",
        "drooping shoulders",
    ]
    assert "crying" not in target_keywords("joy", "crying, jumping")
    assert "yawning" not in target_keywords("anger", "yawning, clenched fists")
    assert "crying" in target_keywords("sadness", "crying")
