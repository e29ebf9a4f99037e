"""Settings: PMG_* and .env, documented fields, mirrored in .env.example, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.identity import Platform
from bot.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"


def test_database_lives_in_the_data_dir_unless_a_url_is_given(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().database_url == f"sqlite+aiosqlite:///{isolated_env / 'pmg.db'}"
    assert Settings().blob_dir == isolated_env / "blobs"

    monkeypatch.setenv("PMG_DB_URL", "sqlite+aiosqlite:////srv/elsewhere.db")
    assert Settings().database_url == "sqlite+aiosqlite:////srv/elsewhere.db"


def test_dotenv_in_the_working_directory_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PMG_DATA_DIR")
    Path(".env").write_text("PMG_DATA_DIR=/srv/pmg\nPMG_PROFILE=tiny\n")

    settings = Settings()

    assert (settings.data_dir, settings.profile) == (Path("/srv/pmg"), "tiny")


def test_weight_sets_and_admins_parse_from_plain_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMG_WEIGHT_SETS", "0:4, 2:2,4:0")
    monkeypatch.setenv("PMG_ADMINS", "telegram:123,discord:456")

    settings = Settings()

    assert settings.weight_sets == [(0.0, 4.0), (2.0, 2.0), (4.0, 0.0)]
    assert settings.is_admin(Platform.TELEGRAM, "123")
    assert settings.is_admin(Platform.DISCORD, "456")
    assert not settings.is_admin(Platform.DISCORD, "123")


def test_admins_match_however_the_platform_is_cased_and_spaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMG_ADMINS", "Telegram:1, telegram: 2 ,DISCORD:3")

    settings = Settings()

    assert settings.is_admin(Platform.TELEGRAM, "1")
    assert settings.is_admin(Platform.TELEGRAM, "2")
    assert settings.is_admin(Platform.DISCORD, "3")
    assert not settings.is_admin(Platform.DISCORD, "1")


@pytest.mark.parametrize("weight_sets", ['["0:4", "4:0"]', "[[0, 4], [4, 0]]"])
def test_lists_can_be_written_as_json(monkeypatch: pytest.MonkeyPatch, weight_sets: str) -> None:
    monkeypatch.setenv("PMG_ADMINS", '["telegram:1", "Discord: 2"]')
    monkeypatch.setenv("PMG_PREFERENCE_ATTRIBUTES", '["style", "colour"]')
    monkeypatch.setenv("PMG_WEIGHT_SETS", weight_sets)

    settings = Settings()

    assert settings.is_admin(Platform.TELEGRAM, "1")
    assert settings.is_admin(Platform.DISCORD, "2")
    assert settings.preference_attributes == ["style", "colour"]
    assert settings.weight_sets == [(0.0, 4.0), (4.0, 0.0)]


def test_default_weight_sets_are_the_papers_five() -> None:
    assert Settings().weight_sets == [(0, 4), (1, 3), (2, 2), (3, 1), (4, 0)]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PMG_WEIGHT_SETS", "0:0", "not both zero"),
        ("PMG_WEIGHT_SETS", "-1:2", "non-negative"),
        ("PMG_ADMINS", "icq:1", "unknown platform"),
        ("PMG_ADMINS", "telegram", "platform:id"),
        ("PMG_ADMINS", '["telegram: "]', "platform:id"),
        ("PMG_ADMINS", '["telegram:1", discord:2]', "not a valid JSON list"),
        ("PMG_WEIGHT_SETS", "[0:4]", "not a valid JSON list"),
        ("PMG_ALPHA", "1.5", "less than or equal to 1"),
        ("PMG_PROFILE", "sdxl", "offline"),
        ("PMG_PREFERENCE_ATTRIBUTES", "character,smell", "unknown preference attributes"),
        ("PMG_LLM_DEVICE", "gpu", "use auto, cpu, cuda or cuda:<n>"),
        ("PMG_SD_SCHEDULER", "lms", "dpm"),
        ("PMG_SD_SIZE", "500", "multiple of 8"),
    ],
)
def test_bad_values_are_refused_with_a_reason(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ValidationError, match=message):
        Settings()


def test_every_field_is_documented_and_listed_in_env_example() -> None:
    listed = set(re.findall(r"^#?\s*(PMG_[A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))

    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description"
        assert f"PMG_{name.upper()}" in listed, f"PMG_{name.upper()} is missing from .env.example"
    assert listed == {f"PMG_{name.upper()}" for name in Settings.model_fields}


def test_env_example_as_shipped_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text(ENV_EXAMPLE.read_text())

    Settings()
