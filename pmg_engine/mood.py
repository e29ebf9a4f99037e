"""The mood of a conversation: MiniLM tuned for mood (LoRA) with a linear head, one turn at a time, the
latest turn weighing most. The package ships the tuned head (`data/mood_head.safetensors`, made by
`pmg mood train`: three members, each from its own mix of our lines and seed, averaged); for another
embedder it falls back to a head trained on the shipped sentences."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import emoji
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from pmg_engine.llm import weights_fingerprint
from pmg_engine.model_sources import resolve_model
from pmg_engine.mood_data import MOODS, LabelledText, MoodPrediction, load_tsv, packaged

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["MOODS", "MoodMember", "MoodModel", "MoodPrediction", "SentenceEmbedder", "shipped_sentences"]

log = logging.getLogger(__name__)

SHIPPED_HEAD = "mood_head.safetensors"
SHIPPED_SENTENCES = (
    "mood_sentences.tsv",
    "mood_chat_lines.tsv",
    "mood_chat_lines_extra.tsv",
    "mood_chat_lines_sarcasm.tsv",
)
CONTEXT_DECAY = 0.7  # each earlier turn counts 0.7 of the one after it (chosen on the persona dev set)
MAX_TOKENS = 96  # a chat turn; longer messages are read from their start
LOGIT_SCALE = 20.0  # unit-length embeddings are too small for a linear head to reach confident logits
FALLBACK_L2 = 1e-2
NEUTRAL = MOODS.index("neutral")


class SentenceEmbedder:
    """Unit-length sentence embeddings from a sentence-transformers model found offline."""

    def __init__(self, source: str, *, setting: str = "PMG_TEXT_EMBEDDER_MODEL") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the folder is local; never ask the hub
        from sentence_transformers import SentenceTransformer

        self.name = source
        self.path = resolve_model(source, marker="modules.json", setting=setting)
        self.model: SentenceTransformer = SentenceTransformer(str(self.path), device="cpu")

    def encode(self, texts: list[str]) -> torch.Tensor:  # (N, D)
        vectors = self.model.encode(
            texts, batch_size=64, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False
        )
        return vectors.float().cpu().clone()  # out of inference mode, so a classifier can train on it

    @property
    def transformer(self) -> PreTrainedModel:
        return cast("PreTrainedModel", self.model[0].auto_model)

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.model.tokenizer


def mood_text(text: str) -> str:
    """Emoji spelled out as their names ("😭" -> "loudly crying face"): MiniLM's vocabulary has almost none
    of them, and in chat they often carry the whole mood."""
    return emoji.demojize(text, delimiters=(" ", " ")).replace("_", " ").strip() or "(nothing)"


class MoodEncoder(torch.nn.Module):
    """A private copy of the embedder's transformer (tuning it must not move the sticker scorer's
    embeddings): texts -> mean-pooled unit-length vectors, (N, D), as sentence-transformers pools them."""

    def __init__(self, embedder: SentenceEmbedder) -> None:
        super().__init__()
        self.transformer = copy.deepcopy(embedder.transformer)
        self.tokenizer = embedder.tokenizer
        self.fingerprint = weights_fingerprint(self.transformer)  # of the untuned weights
        self.dim = int(self.transformer.config.hidden_size)

    def forward(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(
            [mood_text(text) for text in texts],
            padding=True,
            truncation=True,
            max_length=MAX_TOKENS,
            return_tensors="pt",
        )
        hidden = self.transformer(**batch).last_hidden_state  # (N, T, D)
        mask = batch["attention_mask"][..., None].to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1)
        return torch.nn.functional.normalize(pooled, dim=-1)


def lora_config(rank: int = 8) -> Any:
    from peft import LoraConfig

    # Every linear layer of BERT's blocks (query, key, value and the three "dense" ones).
    return LoraConfig(
        r=rank, lora_alpha=2 * rank, lora_dropout=0.1, target_modules=["query", "key", "value", "dense"]
    )


@dataclass
class MoodMember:
    """One tuned reader: LoRA deltas for the embedder (may be none) and a linear head over its vectors."""

    lora: dict[str, torch.Tensor]
    weight: torch.Tensor  # (len(MOODS), D)
    bias: torch.Tensor  # (len(MOODS),)


@dataclass
class MoodHead:
    """What a trained mood model adds to the embedder: its members (their log-probabilities are averaged),
    the calibrated neutral bias, and the provenance that says how it was made."""

    members: list[MoodMember]
    neutral_bias: float
    encoder_fingerprint: str
    provenance: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """Atomically, so a reader never sees half a file."""
        tensors: dict[str, torch.Tensor] = {}
        for i, member in enumerate(self.members):
            # Half precision halves the file; the deltas are merged into fp32 weights as before.
            tensors |= {f"member{i}.lora.{name}": t.half().contiguous() for name, t in member.lora.items()}
            tensors[f"member{i}.head.weight"] = member.weight.contiguous()
            tensors[f"member{i}.head.bias"] = member.bias.contiguous()
        metadata = {
            "members": str(len(self.members)),
            "moods": ",".join(MOODS),
            "neutral_bias": repr(self.neutral_bias),
            "encoder_fingerprint": self.encoder_fingerprint,
            "provenance": json.dumps(self.provenance, sort_keys=True),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            save_file(tensors, handle.name, metadata=metadata)
        Path(handle.name).replace(path)

    @classmethod
    def load(cls, path: Path) -> MoodHead:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("moods") != ",".join(MOODS):
            raise ValueError(f"{path}: made for other moods ({metadata.get('moods')!r})")
        tensors = load_file(path)
        members = []
        for i in range(int(metadata.get("members", "0"))):
            lora = f"member{i}.lora."
            members.append(
                MoodMember(
                    lora={
                        name.removeprefix(lora): t.float()
                        for name, t in tensors.items()
                        if name.startswith(lora)
                    },
                    weight=tensors[f"member{i}.head.weight"],
                    bias=tensors[f"member{i}.head.bias"],
                )
            )
        if not members:
            raise ValueError(f"{path}: no mood head in it")
        return cls(
            members=members,
            neutral_bias=float(metadata["neutral_bias"]),
            encoder_fingerprint=metadata["encoder_fingerprint"],
            provenance=json.loads(metadata.get("provenance", "{}")),
        )


def with_lora(encoder: MoodEncoder, lora: dict[str, torch.Tensor]) -> MoodEncoder:
    """The encoder with trained LoRA deltas merged into its weights: as fast as the plain model."""
    if not lora:
        return encoder
    from peft import get_peft_model, set_peft_model_state_dict

    rank = next(t.shape[0] for name, t in lora.items() if "lora_A" in name)
    tuned = get_peft_model(encoder.transformer, lora_config(rank))
    unexpected = cast("Any", set_peft_model_state_dict(tuned, lora)).unexpected_keys
    if unexpected:
        raise ValueError(f"LoRA weights for another model: {unexpected[:3]}")
    encoder.transformer = tuned.merge_and_unload()
    return encoder


def shipped_sentences(names: Sequence[str] = SHIPPED_SENTENCES) -> list[LabelledText]:
    """The project's own labelled lines: written sentences and chat-style lines (the only source of `tired`)."""
    return [row for name in names for row in load_tsv(packaged(name))]


def pool_turns(log_probs: torch.Tensor, decay: float) -> torch.Tensor:
    """One conversation's turns, (T, len(MOODS)) log-probabilities with the latest last, as one row.

    Each turn weighs `decay` times the one after it. The conversation is neutral only as far as every
    turn is (the product of their neutral probabilities, each to the power of its weight), so a plain
    "ok see you at 5" after bad news does not wash the mood out; the rest is shared among the moods by
    their weighted probabilities, so a mood that changes at the end is the end's mood. One turn stays
    exactly its own probabilities.
    """
    weights = decay ** torch.arange(len(log_probs) - 1, -1, -1, dtype=log_probs.dtype)
    neutral = (weights * log_probs[:, NEUTRAL]).sum().exp()
    moods = (weights[:, None] * log_probs.exp()).sum(dim=0)
    moods[NEUTRAL] = 0.0
    pooled = moods / moods.sum().clamp_min(1e-12) * (1 - neutral)
    pooled[NEUTRAL] = neutral
    return pooled.clamp_min(1e-12).log()


def average_members(log_probs: torch.Tensor) -> torch.Tensor:
    """(members, N, len(MOODS)) -> (N, len(MOODS)): the geometric mean of the members' probabilities."""
    return torch.log_softmax(log_probs.mean(dim=0), dim=-1)


class MoodModel:
    """Maps the last turns of a conversation to one of MOODS, with probabilities (see `pool_turns`).
    `encoders` are the head's members' encoders, in its order."""

    def __init__(
        self,
        encoders: list[MoodEncoder],
        head: MoodHead,
        *,
        turns: int = 3,
        context_decay: float = CONTEXT_DECAY,
    ) -> None:
        if len(encoders) != len(head.members):
            raise ValueError(f"{len(encoders)} encoders for {len(head.members)} members")
        self.encoders = [encoder.eval() for encoder in encoders]
        self.head = head
        self.turns = turns
        self.context_decay = context_decay

    @classmethod
    def load(
        cls, embedder: SentenceEmbedder, cache_dir: Path, *, head_file: Path | None = None, turns: int = 3
    ) -> MoodModel:
        """The shipped head when it was trained on this embedder; else a head trained on the shipped
        sentences (once, cached in `cache_dir`), with a warning that says why."""
        encoder = MoodEncoder(embedder)
        head_file = head_file or packaged(SHIPPED_HEAD)
        try:
            head = MoodHead.load(head_file)
        except (OSError, ValueError, KeyError) as error:
            log.warning("the mood head %s does not load (%s)", head_file, error)
        else:
            if head.encoder_fingerprint == encoder.fingerprint:
                encoders = [encoder] + [MoodEncoder(embedder) for _ in head.members[1:]]
                tuned = [with_lora(e, member.lora) for e, member in zip(encoders, head.members, strict=True)]
                return cls(tuned, head, turns=turns)
            log.warning(
                "the shipped mood head was trained on another embedder (weights %s, this one %s: %s)",
                head.encoder_fingerprint,
                encoder.fingerprint,
                embedder.name,
            )
        return cls([encoder], fallback_head(encoder, cache_dir), turns=turns)

    @torch.no_grad()
    def member_log_probs(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """Each member's log-probabilities for each turn, (members, N, len(MOODS))."""
        rows = []
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            members = [
                torch.log_softmax(LOGIT_SCALE * encoder(batch) @ member.weight.T + member.bias, dim=-1)
                for encoder, member in zip(self.encoders, self.head.members, strict=True)
            ]
            rows.append(torch.stack(members))
        return torch.cat(rows, dim=1) if rows else torch.zeros(len(self.encoders), 0, len(MOODS))

    def turn_log_probs(self, texts: list[str]) -> torch.Tensor:  # (N, len(MOODS))
        """Each turn's log-probabilities: the members' averaged, renormalised (their geometric mean)."""
        return average_members(self.member_log_probs(texts))

    def scores(self, conversations: list[list[str]]) -> torch.Tensor:  # (N, len(MOODS))
        """Log-probabilities per conversation, neutral's bias added: all turns of all users in one pass."""
        recent = [[line for line in lines if line.strip()][-self.turns :] or [""] for lines in conversations]
        per_turn = self.turn_log_probs([line for lines in recent for line in lines])
        pooled, start = [], 0
        for lines in recent:
            pooled.append(pool_turns(per_turn[start : start + len(lines)], self.context_decay))
            start += len(lines)
        scores = torch.stack(pooled)
        scores[:, NEUTRAL] += self.head.neutral_bias
        return scores

    def predict(self, conversations: list[list[str]]) -> list[MoodPrediction]:
        if not conversations:
            return []
        probabilities = torch.softmax(self.scores(conversations), dim=-1)
        return [
            MoodPrediction(
                MOODS[int(row.argmax())], {m: round(float(p), 4) for m, p in zip(MOODS, row, strict=True)}
            )
            for row in probabilities
        ]


def fit_linear_head(
    vectors: torch.Tensor, labels: torch.Tensor, *, l2: float = FALLBACK_L2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-batch L-BFGS on frozen embeddings: deterministic, seconds for a few thousand rows."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(vectors.shape[1], len(MOODS))
    optimiser = torch.optim.LBFGS(linear.parameters(), max_iter=200, line_search_fn="strong_wolfe")
    scaled = LOGIT_SCALE * vectors

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(scaled), labels) + l2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return linear.weight.detach().clone(), linear.bias.detach().clone()


def fallback_head(encoder: MoodEncoder, cache_dir: Path) -> MoodHead:
    """A linear head over the untuned embedder, trained on the shipped sentences once and cached."""
    examples = shipped_sentences()
    digest = hashlib.sha256(f"{encoder.fingerprint}|{FALLBACK_L2}|{examples!r}".encode()).hexdigest()[:16]
    cached = cache_dir / f"mood-{digest}.safetensors"
    if cached.is_file():
        try:
            return MoodHead.load(cached)
        except Exception as error:  # our own cache: any failure means retrain
            log.warning("cached mood head %s does not load (%s); retraining", cached, error)
    log.info("training a mood head for this embedder on %d shipped sentences", len(examples))
    with torch.no_grad():
        vectors = torch.cat(
            [encoder([row.text for row in examples[i : i + 64]]) for i in range(0, len(examples), 64)]
        )
    labels = torch.tensor([MOODS.index(row.mood) for row in examples])
    weight, bias = fit_linear_head(vectors, labels)
    # Balanced sentences make every mood equally likely a priori; everyday chat is mostly neutral.
    head = MoodHead(
        [MoodMember({}, weight, bias)],
        1.0,
        encoder.fingerprint,
        {"trained_on": [*SHIPPED_SENTENCES], "fallback": True},
    )
    head.save(cached)
    return head
