"""`pmg eval`: the metrics, the file formats and their errors (the real numbers come from the command)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from pmg_engine.evaluation import (
    MELD_LABELS,
    MeldUtterance,
    character_matches,
    evaluate_personas,
    load_meld,
    load_personas,
)
from pmg_engine.keywords import KeywordEngine
from pmg_engine.preferences import PreferenceExtractor
from scripted_llm import FixedMood, ScriptedLLM, by_question

MELD_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "meld"

PERSONA = {
    "id": "p1",
    "stickers": [{"emoji": "🐸", "name": "frog", "set_title": "Froggy Feels"}] * 3,
    "messages": ["ribbit"],
    "conversation": ["we won!!"],
    "expect": {"character": ["frog", "toad"], "mood": "joy"},
}


def test_characters_match_case_and_plural_insensitively() -> None:
    assert character_matches("Cats", ["cat"])
    assert character_matches("bunny", ["rabbit", "bunnies"])
    assert not character_matches("dog", ["cat"])


def test_personas_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "personas.jsonl"
    path.write_text(json.dumps(PERSONA) + "\n{not json}\n")

    with pytest.raises(ValueError, match=r"personas.jsonl:2: not a persona line"):
        load_personas(path)


def test_evaluate_personas_reports_rates_and_time_per_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "personas.jsonl"
    path.write_text(
        json.dumps(PERSONA)
        + "\n"
        + json.dumps(PERSONA | {"id": "p2", "expect": {"character": ["cat"], "mood": "anger"}})
    )
    llm = ScriptedLLM(by_question({"character": "frog"}))
    engine = KeywordEngine(llm, FixedMood("joy"), PreferenceExtractor(llm))  # type: ignore[arg-type]
    nade_read: list[str] = []

    def nade_moods(texts: list[str]) -> list[str]:  # nade itself runs in test_mood_eval.py
        nade_read.extend(texts)
        return ["anger"] * len(texts)

    monkeypatch.setattr("pmg_engine.evaluation.nade_moods", nade_moods)

    report = evaluate_personas(engine, load_personas(path))

    assert report["n"] == 2
    assert report["character_hit_rate"] == 0.5
    assert report["character_top1_rate"] == 0.5
    assert report["mood_accuracy"] == 0.5
    assert report["nade_mood_accuracy"] == 0.5 and nade_read == ["we won!!", "we won!!"]
    assert report["seconds_per_user"] >= 0
    assert report["users"][0]["preference_keywords"][0] == "frog"


def test_a_meld_csv_loads_text_emotion_dialogue_and_speaker(tmp_path: Path) -> None:
    path = tmp_path / "meld.csv"
    path.write_text(
        "Sr No.,Utterance,Speaker,Emotion,Dialogue_ID,Utterance_ID\n"
        '1,"Oh, really?",Ross,surprise,0,0\n2,Okay.,Rachel,neutral,0,1\n'
    )

    assert load_meld(path) == [
        MeldUtterance("Oh, really?", "surprise", "0", "Ross"),
        MeldUtterance("Okay.", "neutral", "0", "Rachel"),
    ]
    assert load_meld(path, limit=1) == [MeldUtterance("Oh, really?", "surprise", "0", "Ross")]


def test_a_csv_that_is_not_meld_says_why(tmp_path: Path) -> None:
    path = tmp_path / "meld.csv"
    path.write_text("Utterance,Speaker,Emotion\nHi,Ross,joy\n")
    with pytest.raises(ValueError, match="no column Dialogue_ID"):
        load_meld(path)

    path.write_text("Utterance,Speaker,Emotion,Dialogue_ID\nHi,Ross,joy\nYo,Joey,glee\n")
    with pytest.raises(ValueError, match="line 3: 'glee' is not one of MELD's seven"):
        load_meld(path)


@pytest.mark.skipif(not MELD_DIR.is_dir(), reason="MELD is not in ../shared/data/meld")
def test_the_shared_meld_test_set_loads() -> None:
    rows = load_meld(MELD_DIR / "test_sent_emo.csv")

    assert len(rows) > 2000
    assert {row.emotion for row in rows} == set(MELD_LABELS)
    assert {row.speaker for row in rows} > {"Ross", "Rachel"}


def test_eval_commands_explain_bad_files(tmp_path: Path) -> None:
    runner = CliRunner()

    missing = runner.invoke(app, ["eval", "personas", str(tmp_path / "nope.jsonl")])
    (tmp_path / "bad.jsonl").write_text("[1, 2]\n")
    malformed = runner.invoke(app, ["eval", "personas", str(tmp_path / "bad.jsonl")])

    assert missing.exit_code == 1 and "is not a file" in missing.output
    assert malformed.exit_code == 1 and "bad.jsonl:1: not a persona line" in malformed.output
