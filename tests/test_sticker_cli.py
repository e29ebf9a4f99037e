"""The main job as a person runs it: `pmg demo`, `pmg sticker`, `pmg eval personas --stickers`, on the
real offline models (SmolLM2, MiniLM, OpenMoji, the NSFW gate). The mood model trains once per run."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from bot.cli import app
from bot.identity import UserKey
from bot.settings import Settings
from bot.user_files import UserFiles
from pmg_engine.sticker_file import MAX_WEBP_BYTES

runner = CliRunner()


def pmg(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output  # stdout and stderr, as a person sees them


def pmg_json(*args: str) -> dict[str, Any]:
    """stdout alone is the JSON object; logs and progress go to stderr."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_demo_makes_a_personalized_sticker_and_explains_it(data_dir: Path, tmp_path: Path) -> None:
    sticker, sheet = tmp_path / "out" / "demo.webp", tmp_path / "sheet.png"

    report = pmg_json("demo", "--out", str(sticker), "--sheet", str(sheet))

    assert report["profile"] == "offline" and report["personalized"] is True
    assert report["preference_keywords"][0] == "dog"
    assert report["mood"] and len(report["target_keywords"]) == 5
    assert len(report["candidates"]) == 5
    assert all({"weights", "d_p", "d_t", "z", "face", "description"} <= set(c) for c in report["candidates"])
    best = max(range(5), key=lambda i: (report["candidates"][i]["z"], -i))
    assert report["chosen"] == best
    assert report["path"] == str(sticker) and sticker.stat().st_size <= MAX_WEBP_BYTES
    image = Image.open(io.BytesIO(sticker.read_bytes()))
    assert (image.format, image.size) == ("WEBP", (512, 512))
    assert sticker.with_suffix(".png").is_file() and sheet.is_file()


def test_an_unknown_user_gets_a_mood_only_sticker_kept_in_their_own_folder(data_dir: Path) -> None:
    code, output = pmg("sticker", "--user", "newcomer", "we won the cup!!")

    assert code == 0, output
    assert "no history for this user" in output and "not recorded" in output
    assert "preference keywords: (none)" in output
    folder = UserFiles(Settings().user_files_dir).folder(UserKey.of("console", "newcomer"))
    [sticker] = folder.glob("*.webp")  # where /forget of "newcomer" looks (test_privacy_use_cases)
    assert f"sticker: {sticker}" in output and (sticker.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alpha", "7", "hi"], "alpha must be between 0 and 1"),
        (["   "], "give the conversation to answer"),
        (["--profile", "huge", "hi"], "huge"),
    ],
)
def test_bad_options_are_one_clear_line_before_any_model_loads(
    data_dir: Path, args: list[str], message: str
) -> None:
    code, output = pmg("sticker", "--user", "ann", *args)
    assert code == 2
    assert message in output


def test_eval_personas_with_stickers_judges_the_chosen_stickers(data_dir: Path, tmp_path: Path) -> None:
    personas = tmp_path / "personas.jsonl"
    users = [
        {
            "id": "cat-fan",
            "stickers": [{"emoji": "🐱", "name": "cat face", "set_title": "Kitty"}] * 3,
            "messages": [],
            "conversation": ["I GOT THE JOB!!! best day ever"],
            "expect": {"character": ["cat"], "mood": "joy"},
        },
        {
            "id": "frog-fan",
            "stickers": [{"emoji": "🐸", "name": "frog", "set_title": "Froggy"}] * 3,
            "messages": [],
            "conversation": ["my grandma passed away this morning", "i can't stop crying"],
            "expect": {"character": ["frog"], "mood": "sadness"},
        },
    ]
    personas.write_text("\n".join(json.dumps(user) for user in users))
    sheet = tmp_path / "chosen.png"

    report = pmg_json("eval", "personas", str(personas), "--stickers", "--sheet", str(sheet))

    assert report["n"] == 2 and report["sticker_character_rate"] == 1.0
    assert 0.0 <= report["sticker_mood_rate"] <= 1.0
    assert [row["sticker"]["character"] for row in report["users"]] == ["🐱", "🐸"]
    assert sheet.is_file()


def test_bench_service_reports_latency_and_the_batching_ratio(data_dir: Path) -> None:
    report = pmg_json("bench", "service", "--users", "1", "--users", "3")
    for key in (
        "profile",
        "p50_single_s",
        "p95_single_s",
        "throughput_batched_per_min",
        "throughput_unbatched_per_min",
        "batching_ratio",
        "users",
    ):
        assert key in report
    assert report["profile"] == "offline" and report["users"] == [1, 3]
    assert report["batching_ratio"] > 0 and len(report["rows"]) == 4
