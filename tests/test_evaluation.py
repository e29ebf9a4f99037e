"""`pmg eval`: the metrics, the file formats and their errors (the real numbers come from the command)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from pmg_engine.evaluation import (
    MELD_LABELS,
    character_matches,
    evaluate_personas,
    load_meld,
    load_personas,
    weighted_f1,
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


def test_weighted_f1_weights_each_label_by_its_support() -> None:
    gold = ["joy", "joy", "joy", "anger"]
    predicted = ["joy", "joy", "anger", "anger"]
    # joy: P=1, R=2/3 -> F1=0.8 (support 3); anger: P=1/2, R=1 -> F1=2/3 (support 1)
    assert weighted_f1(gold, predicted) == pytest.approx((0.8 * 3 + 2 / 3) / 4)
    assert weighted_f1(gold, gold) == 1.0


def test_characters_match_case_and_plural_insensitively() -> None:
    assert character_matches("Cats", ["cat"])
    assert character_matches("bunny", ["rabbit", "bunnies"])
    assert not character_matches("dog", ["cat"])


def test_personas_file_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "personas.jsonl"
    path.write_text(json.dumps(PERSONA) + "\n{not json}\n")

    with pytest.raises(ValueError, match=r"personas.jsonl:2: not a persona line"):
        load_personas(path)


def test_evaluate_personas_reports_rates_and_time_per_user(tmp_path: Path) -> None:
    path = tmp_path / "personas.jsonl"
    path.write_text(
        json.dumps(PERSONA)
        + "\n"
        + json.dumps(PERSONA | {"id": "p2", "expect": {"character": ["cat"], "mood": "anger"}})
    )
    llm = ScriptedLLM(by_question({"character": "frog"}))
    engine = KeywordEngine(llm, FixedMood("joy"), PreferenceExtractor(llm))  # type: ignore[arg-type]

    report = evaluate_personas(engine, load_personas(path))

    assert report["n"] == 2
    assert report["character_hit_rate"] == 0.5
    assert report["character_top1_rate"] == 0.5
    assert report["mood_accuracy"] == 0.5
    assert report["seconds_per_user"] >= 0
    assert report["users"][0]["preference_keywords"][0] == "frog"


def test_a_meld_csv_loads_with_its_seven_labels(tmp_path: Path) -> None:
    path = tmp_path / "meld.csv"
    path.write_text(
        'Sr No.,Utterance,Speaker,Emotion\n1,"Oh, really?",Ross,surprise\n2,Okay.,Rachel,neutral\n'
    )

    assert load_meld(path) == [("Oh, really?", "surprise"), ("Okay.", "neutral")]
    assert load_meld(path, limit=1) == [("Oh, really?", "surprise")]


@pytest.mark.skipif(not MELD_DIR.is_dir(), reason="MELD is not in ../shared/data/meld")
def test_the_shared_meld_test_set_loads() -> None:
    rows = load_meld(MELD_DIR / "test_sent_emo.csv")

    assert len(rows) > 2000
    assert {emotion for _, emotion in rows} == set(MELD_LABELS)


def test_eval_commands_explain_bad_files(tmp_path: Path) -> None:
    runner = CliRunner()

    missing = runner.invoke(app, ["eval", "personas", str(tmp_path / "nope.jsonl")])
    (tmp_path / "bad.jsonl").write_text("[1, 2]\n")
    malformed = runner.invoke(app, ["eval", "personas", str(tmp_path / "bad.jsonl")])

    assert missing.exit_code == 1 and "is not a file" in missing.output
    assert malformed.exit_code == 1 and "bad.jsonl:1: not a persona line" in malformed.output
