"""`pmg eval meld|goemotions|challenges`: the metrics, the conversations each model reads, ours beside
nade, and the commands on tiny files. The real mood model is tested in test_mood.py; here it is FixedMood."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from pmg_engine.evaluation import (
    MELD_LABELS,
    TO_MELD,
    Challenge,
    MeldUtterance,
    compare_moods,
    evaluate_challenges,
    load_challenges,
    meld_conversations,
    nade_moods,
)
from pmg_engine.mood_data import GOEMOTIONS_TO_MOOD, MOODS
from pmg_engine.mood_scores import confusion, macro_f1, mood_scores, weighted_f1
from scripted_llm import FixedMood

CHALLENGES = (
    "kind\tmood\tconversation\n"
    "negation\tneutral\tI'm not angry at all\n"
    "negation\tjoy\tnot bad, not bad at all!\n"
    "shift\tjoy\tugh the bus was late || but then I got the job!!\n"
)


@pytest.fixture
def nade_says(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """nade answers "neutral" for every text; the texts it read are returned (real nade: one test below)."""
    read: list[str] = []

    def fake_nade_moods(texts: list[str]) -> list[str]:
        read.extend(texts)
        return ["neutral"] * len(texts)

    monkeypatch.setattr("pmg_engine.evaluation.nade_moods", fake_nade_moods)
    return read


def test_scores_on_a_hand_computed_example() -> None:
    gold = ["joy", "joy", "joy", "anger"]
    predicted = ["joy", "joy", "anger", "anger"]
    # joy: P=1, R=2/3 -> F1=0.8 (support 3); anger: P=1/2, R=1 -> F1=2/3 (support 1); fear: 0 (support 0)
    labels = ["joy", "anger", "fear"]

    assert weighted_f1(gold, predicted, labels) == pytest.approx((0.8 * 3 + 2 / 3) / 4)
    assert macro_f1(gold, predicted, labels) == pytest.approx((0.8 + 2 / 3 + 0) / 3)
    assert confusion(gold, predicted) == {"anger": {"anger": 1}, "joy": {"anger": 1, "joy": 2}}
    scores = mood_scores(gold, predicted, labels)
    assert scores["n"] == 4 and scores["accuracy"] == 0.75
    assert scores["per_mood_f1"] == {"joy": 0.8, "anger": 0.6667, "fear": 0.0}
    assert weighted_f1(gold, gold, labels) == 1.0


def _utterance(text: str, speaker: str, dialogue: str = "0") -> MeldUtterance:
    return MeldUtterance(text, "neutral", dialogue, speaker)


def test_meld_context_is_the_same_speakers_earlier_turns_in_the_same_dialogue() -> None:
    rows = [
        _utterance("r1", "Ross"),
        _utterance("m1", "Monica"),
        _utterance("r2", "Ross"),
        _utterance("r3", "Ross"),
        _utterance("r4", "Ross"),
        _utterance("r5", "Ross", dialogue="1"),
    ]

    assert meld_conversations(rows, context=False) == [[row.text] for row in rows]
    assert meld_conversations(rows, context=True, turns=3) == [
        ["r1"],
        ["m1"],  # Ross's turns are not Monica's context
        ["r1", "r2"],
        ["r1", "r2", "r3"],
        ["r2", "r3", "r4"],  # at most 3 turns
        ["r5"],  # a new dialogue starts afresh
    ]
    assert meld_conversations(rows, context=True, turns=1) == [[row.text] for row in rows]


def test_compare_moods_maps_ours_onto_the_labels_and_gives_nade_the_joined_turns(
    nade_says: list[str],
) -> None:
    mood_model = FixedMood("love")

    report = compare_moods(
        mood_model, [["a"], ["b", "c"]], ["joy", "neutral"], MELD_LABELS, to_label=TO_MELD, batch=1
    )

    assert mood_model.seen == [["a"], ["b", "c"]]
    assert nade_says == ["a", "b c"]
    assert report["pmg"]["accuracy"] == 0.5 and report["pmg"]["confusion"] == {
        "joy": {"joy": 1},
        "neutral": {"joy": 1},
    }
    assert report["nade"]["accuracy"] == 0.5 and set(report["nade"]["per_mood_f1"]) == set(MELD_LABELS)
    assert report["pmg"]["seconds_per_conversation"] >= 0


def test_without_nade_its_scores_are_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pmg_engine.evaluation.nade_moods", lambda texts: None)

    report = compare_moods(FixedMood("joy"), [["a"]], ["joy"], ["joy"])

    assert report["nade"] is None and report["pmg"]["accuracy"] == 1.0


def test_real_nade_reads_moods_it_knows_and_never_love_or_tired() -> None:
    moods = nade_moods(["I am so happy today!", "this is disgusting", "ok", "I love you so much"])

    if moods is None:
        pytest.skip("nade is not installed")
    assert moods[0] == "joy" and moods[1] == "disgust"
    assert set(moods) <= set(MELD_LABELS)


def test_challenges_load_and_score_per_kind(tmp_path: Path, nade_says: list[str]) -> None:
    path = tmp_path / "challenges.tsv"
    path.write_text(CHALLENGES)
    challenges = load_challenges(path)

    report = evaluate_challenges(FixedMood("joy"), challenges)

    assert challenges[2] == Challenge("shift", "joy", ("ugh the bus was late", "but then I got the job!!"))
    assert report["per_kind"] == {
        "negation": {"n": 2, "pmg": 0.5, "nade": 0.5},
        "shift": {"n": 1, "pmg": 1.0, "nade": 0.0},
    }
    assert set(report["pmg"]["per_mood_f1"]) == set(MOODS)


def test_a_bad_challenge_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "challenges.tsv"
    path.write_text(CHALLENGES + "sarcasm\tgrumpy\toh great, another meeting\n")
    with pytest.raises(ValueError, match="line 5: expected a kind, one of our moods and a conversation"):
        load_challenges(path)

    path.write_text("mood\ttext\njoy\tyay\n")
    with pytest.raises(ValueError, match="the header must be"):
        load_challenges(path)


@pytest.fixture
def fixed_mood(monkeypatch: pytest.MonkeyPatch) -> FixedMood:
    """The commands' mood model: FixedMood instead of loading the real one."""
    mood_model = FixedMood("joy")
    monkeypatch.setattr("bot.eval_cli.load_mood_model", lambda settings: mood_model)
    return mood_model


def _goemotions(folder: Path) -> Path:
    """A three-comment split: joy, anger, and one dropped (approval maps to no mood)."""
    names = list(GOEMOTIONS_TO_MOOD)
    (folder / "emotions.txt").write_text("\n".join(names) + "\n")
    split = folder / "test.tsv"
    split.write_text(
        f"what a great day\t{names.index('joy')}\tc1\n"
        f"this is so annoying\t{names.index('annoyance')}\tc2\n"
        f"sure, fine\t{names.index('approval')}\tc3\n"
    )
    return split


def test_eval_goemotions_prints_ours_beside_nade(
    tmp_path: Path, fixed_mood: FixedMood, nade_says: list[str]
) -> None:
    result = CliRunner().invoke(app, ["eval", "goemotions", str(_goemotions(tmp_path))])

    assert result.exit_code == 0, result.output
    assert fixed_mood.seen == [["what a great day"], ["this is so annoying"]]
    for heading in ("macro-F1", "weighted F1", "F1 per mood", "our confusion", "pmg", "nade"):
        assert heading in result.output


def test_eval_goemotions_json_scores_only_the_moods_in_the_gold(
    tmp_path: Path, fixed_mood: FixedMood, nade_says: list[str]
) -> None:
    result = CliRunner().invoke(
        app, ["eval", "goemotions", str(_goemotions(tmp_path)), "--limit", "1", "--json"]
    )

    report = json.loads(result.output)
    assert report["pmg"]["n"] == 1 and report["pmg"]["accuracy"] == 1.0
    assert list(report["pmg"]["per_mood_f1"]) == ["joy"]
    assert report["nade"]["accuracy"] == 0.0


def test_eval_challenges_prints_accuracy_per_kind(
    tmp_path: Path, fixed_mood: FixedMood, nade_says: list[str]
) -> None:
    path = tmp_path / "challenges.tsv"
    path.write_text(CHALLENGES)

    result = CliRunner().invoke(app, ["eval", "challenges", str(path)])
    as_json = CliRunner().invoke(app, ["eval", "challenges", str(path), "--json"])

    assert result.exit_code == 0, result.output
    assert "accuracy per kind" in result.output and "negation" in result.output
    assert json.loads(as_json.output)["per_kind"]["shift"] == {"n": 1, "pmg": 1.0, "nade": 0.0}


def test_eval_meld_with_context_reads_the_speakers_earlier_turns(
    tmp_path: Path, fixed_mood: FixedMood, nade_says: list[str]
) -> None:
    path = tmp_path / "meld.csv"
    path.write_text(
        "Utterance,Speaker,Emotion,Dialogue_ID\nWe won!,Ross,joy,0\nReally?,Rachel,surprise,0\nYes!,Ross,joy,0\n"
    )

    result = CliRunner().invoke(app, ["eval", "meld", str(path), "--context", "--json"])

    assert result.exit_code == 0, result.output
    assert fixed_mood.seen[-1] == ["We won!", "Yes!"] and nade_says[-1] == "We won! Yes!"
    assert json.loads(result.output)["pmg"]["accuracy"] == pytest.approx(2 / 3, abs=1e-4)


@pytest.mark.parametrize(
    ("command", "content", "message"),
    [
        ("meld", "a,b\n1,2\n", "is not a MELD csv: no column"),
        ("goemotions", "text\t0\tc1\n", "is not a GoEmotions split"),  # no emotions.txt beside it
        ("challenges", "mood\ttext\njoy\tyay\n", "is not a challenge set: the header must be"),
    ],
)
def test_mood_eval_commands_explain_bad_files(
    tmp_path: Path, fixed_mood: FixedMood, command: str, content: str, message: str
) -> None:
    path = tmp_path / "data.txt"
    path.write_text(content)
    runner = CliRunner()

    bad = runner.invoke(app, ["eval", command, str(path)])
    missing = runner.invoke(app, ["eval", command, str(tmp_path / "nope")])

    assert bad.exit_code == 1 and message in bad.output
    assert missing.exit_code == 1 and "is not a file" in missing.output
    assert fixed_mood.seen == []
