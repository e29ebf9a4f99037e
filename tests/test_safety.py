"""Safety: the keyword deny-list before generation, the real NSFW gate after it."""

from __future__ import annotations

from PIL import Image, ImageDraw

from pmg_engine.safety import KeywordDenyList, NsfwGate


def test_denied_words_never_pass_in_any_case_or_spacing() -> None:
    deny = KeywordDenyList(extra=["Clown"])
    kept, dropped = deny.filter(["cat", "NSFW art", "bloody-mess", "sad clown", "orange"])
    assert kept == ["cat", "orange"]
    assert dropped == ["NSFW art", "bloody-mess", "sad clown"]


def test_innocent_words_that_contain_denied_ones_pass() -> None:
    kept, dropped = KeywordDenyList().filter(["sussex", "skills", "bloodhound"])
    assert kept == ["sussex", "skills", "bloodhound"] and dropped == []


def test_the_nsfw_gate_scores_sticker_art_as_safe() -> None:
    sticker = Image.new("RGBA", (512, 512), (0, 0, 0, 0))
    ImageDraw.Draw(sticker).ellipse((100, 100, 412, 412), fill=(250, 160, 40, 255), outline="black", width=12)
    gate = NsfwGate()
    [score] = gate.scores([sticker])
    assert 0.0 <= score < 0.2
    assert gate.flags([sticker]) == [False]
