"""The bias-correction LLM (paper §3.3): the stage-1 LLM with P-Tuning v2 prefixes, L learnable multimodal
tokens after the behavior prompt, and a linear mapper into the generator's text width. Its output E_m
(B, L, D) are the soft preference embeddings; only the prefixes, the tokens and the mapper train."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pmg_engine.llm import ChatLLM
from pmg_engine.prompts import Conversation

FORMAT = "pmg-soft-prompt/1"


class CheckpointError(Exception):
    """A checkpoint that cannot be used here: corrupted, or made for another model; the message says which."""


@dataclass(frozen=True)
class SoftPromptShape:
    """What a checkpoint must agree on with the models it is loaded beside."""

    tokens: int  # L, multimodal tokens
    prefixes: int  # S, P-Tuning v2 prefix vectors per layer
    llm_hidden: int  # the LLM's hidden size (576 for SmolLM2-135M)
    text_width: int  # the generator's text-embedding width (768 for SD1.5)


class SoftPromptModel(torch.nn.Module):
    """[E_prompt, E_m] = LLM_f(prompt, m): E_m is the last L positions' hidden states, mapped: (B, L, D)."""

    def __init__(self, llm: ChatLLM, *, tokens: int, prefixes: int, text_width: int, seed: int = 0) -> None:
        from peft import PrefixTuningConfig, get_peft_model

        super().__init__()
        self.llm = llm
        base = copy.deepcopy(llm.model)  # stage 1 keeps serving the untouched model
        base.requires_grad_(False)
        self.body = get_peft_model(
            base, PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=prefixes)
        )
        hidden = base.config.hidden_size
        generator = torch.Generator().manual_seed(seed)
        embedding = base.get_input_embeddings()
        assert isinstance(embedding, torch.nn.Embedding)  # every causal LM transformers loads has one
        rows = embedding.weight.detach()
        # New tokens start as an average word plus a little noise: in range for the LLM, not all alike.
        start = rows.mean(0) + rows.std(0) * 0.1 * torch.randn(tokens, hidden, generator=generator)
        self.multimodal_tokens = torch.nn.Parameter(start)  # (L, H)
        self.mapper = torch.nn.Linear(hidden, text_width)
        with torch.no_grad():  # small at first: E_m starts as a gentle addition to the keywords
            self.mapper.weight.normal_(0.0, 0.02 / hidden**0.5, generator=generator)
            self.mapper.bias.zero_()
        self.shape = SoftPromptShape(tokens, prefixes, hidden, text_width)

    def forward(self, prompts: list[Conversation]) -> torch.Tensor:  # (B, L, D)
        encoded = self.llm.encode_chat(prompts)  # left-padded, so the tokens are the last L positions
        words = self.body.get_input_embeddings()(encoded["input_ids"])  # (B, P, H)
        batch = words.shape[0]
        tokens = self.multimodal_tokens.to(words.dtype).expand(batch, -1, -1)  # (B, L, H)
        mask = torch.cat(
            [encoded["attention_mask"], encoded["attention_mask"].new_ones(batch, self.shape.tokens)], 1
        )
        out = self.body(
            inputs_embeds=torch.cat([words, tokens], 1), attention_mask=mask, output_hidden_states=True
        )
        # The mapper stays fp32 (it trains) whatever precision the LLM runs in.
        return self.mapper(out.hidden_states[-1][:, -self.shape.tokens :].to(self.mapper.weight.dtype))

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Exactly the parameters that train: prefixes, multimodal tokens, mapper."""
        return {name: p.detach().contiguous().cpu() for name, p in self.named_parameters() if p.requires_grad}

    def save(self, path: Path, manifest: dict[str, Any]) -> None:
        """One safetensors file: the trainable tensors, the manifest as JSON in its metadata."""
        full = {"format": FORMAT, **asdict(self.shape), **manifest}
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        save_file(self.trainable_state(), str(partial), metadata={"manifest": json.dumps(full)})
        partial.replace(path)  # a half-written file never looks like a checkpoint

    def load(self, path: Path, *, base_fingerprint: str) -> dict[str, Any]:
        """Load a checkpoint made for this base LLM and these shapes; returns its manifest."""
        manifest = read_manifest(path)
        expected = {"format": FORMAT, **asdict(self.shape), "base_llm_sha256": base_fingerprint}
        wrong = {k: (manifest.get(k), v) for k, v in expected.items() if manifest.get(k) != v}
        if wrong:
            details = ", ".join(f"{k}: checkpoint {got!r}, here {want!r}" for k, (got, want) in wrong.items())
            raise CheckpointError(
                f"{path.name} was made for other models ({details}); retrain with `pmg retrain`"
            )
        try:
            state = load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{path.name} is corrupted ({error}); retrain with `pmg retrain`") from None
        own = dict(self.named_parameters())
        if set(state) != set(self.trainable_state()) or any(state[k].shape != own[k].shape for k in state):
            raise CheckpointError(
                f"{path.name} holds other tensors than this model trains; retrain with `pmg retrain`"
            )
        with torch.no_grad():
            for name, tensor in state.items():
                own[name].copy_(tensor)
        return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    """The JSON manifest of a checkpoint file; CheckpointError when it is not a readable checkpoint."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        manifest = json.loads(metadata["manifest"])
    except (SafetensorError, OSError, KeyError, ValueError) as error:
        raise CheckpointError(
            f"{path.name} is not a readable pmg checkpoint ({error}); retrain with `pmg retrain`"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not a {FORMAT} checkpoint")
    return manifest


def new_version() -> str:
    """A sortable, unique checkpoint version: UTC time to the millisecond."""
    now = time.time()
    return time.strftime("v%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}"


class SoftPreferences:
    """The checkpoint in service: E_m for a batch of users' behavior prompts, swapped between batches."""

    def __init__(self, llm: ChatLLM, *, tokens: int, prefixes: int, text_width: int) -> None:
        self.llm = llm
        self.shape = (tokens, prefixes, text_width)
        self.model: SoftPromptModel | None = None
        self.version: str | None = None

    def use(self, version: str, path: Path) -> None:
        """Load `path` unless `version` is already in service; CheckpointError leaves the old one serving."""
        if version == self.version:
            return
        tokens, prefixes, text_width = self.shape
        model = SoftPromptModel(self.llm, tokens=tokens, prefixes=prefixes, text_width=text_width)
        model.load(path, base_fingerprint=self.llm.weights_fingerprint)
        self.model, self.version = model.eval(), version

    @torch.no_grad()
    def embed(self, prompts: list[Conversation]) -> torch.Tensor | None:  # (B, L, D), None: no checkpoint yet
        return self.model(prompts) if self.model is not None and prompts else None
