"""The generator's text condition (paper §3.4): w_p·E^P and w_t·E^t fitted into CLIP's 77-token context.

Each prompt is encoded on its own by the pipeline's text encoder; its content rows (BOS..EOS) are
kept. One condition is: BOS, then w_p·[E_m ; E_k] (soft preference embeddings, then the preference
keywords' rows), then w_t·E^t (the target prompt's rows), then the padding rows of the empty prompt.
A part whose weight is 0 is left out, so attention cannot see it (a zero vector would still be seen).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

CONTEXT = 77  # CLIP's text context: SD1.5's cross-attention was trained on exactly this length
MIN_TARGET_ROWS = 24  # when both parts do not fit, the target keeps at least this many rows


@dataclass(frozen=True)
class EncodedPrompt:
    """One prompt through the text encoder: its content rows BOS..EOS, (n, D)."""

    rows: torch.Tensor

    @property
    def body(self) -> torch.Tensor:  # (n - 1, D): everything after BOS, EOS (the prompt's summary) included
        return self.rows[1:]


def encode_prompts(
    tokenizer, text_encoder, prompts: Sequence[str]
) -> tuple[list[EncodedPrompt], torch.Tensor]:
    """Content rows of each prompt, and the full (N, 77, D) hidden states (what SD itself would use)."""
    tokens = tokenizer(
        list(prompts), padding="max_length", max_length=CONTEXT, truncation=True, return_tensors="pt"
    )
    ids = tokens.input_ids.to(text_encoder.device)
    with torch.no_grad():
        hidden = text_encoder(ids)[0]  # (N, 77, D)
    eos = tokenizer.eos_token_id
    lengths = [int((row == eos).nonzero()[0]) + 1 for row in ids]  # first EOS: pad shares its id
    return [EncodedPrompt(h[:n]) for h, n in zip(hidden, lengths, strict=True)], hidden


def fit_condition(
    empty: torch.Tensor,
    preference: torch.Tensor,
    target: torch.Tensor,
    weights: tuple[float, float],
) -> torch.Tensor:
    """One (77, D) condition from the empty prompt's hidden states (77, D), E^P rows (p, D) and E^t rows
    (t, D), weighted by a normalised (w_p, w_t). Too long for 76 rows: E^t keeps at least MIN_TARGET_ROWS
    (all of it when E^P leaves room), E^P the rest; each is cut from its end (keywords are ranked)."""
    w_p, w_t = weights
    preference = preference if w_p > 0 else preference[:0]
    target = target if w_t > 0 else target[:0]
    room = CONTEXT - 1  # after BOS
    keep_target = min(len(target), max(room - len(preference), MIN_TARGET_ROWS))
    keep_preference = min(len(preference), room - keep_target)
    rows = [empty[:1], w_p * preference[:keep_preference], w_t * target[:keep_target]]
    used = 1 + keep_preference + keep_target
    rows.append(empty[used:])  # the empty prompt's padding rows fill the rest, as for any short prompt
    return torch.cat(rows)  # (77, D)


def preference_rows(keyword_rows: EncodedPrompt, soft_embeddings: torch.Tensor | None) -> torch.Tensor:
    """E^P = concat(E_m, E_k): the soft preference embeddings (L, D) before the keywords' rows."""
    if soft_embeddings is None:
        return keyword_rows.body
    return torch.cat([soft_embeddings.to(keyword_rows.rows), keyword_rows.body])
