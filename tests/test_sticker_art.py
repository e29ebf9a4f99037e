"""The offline sticker composer: weight-set planning, honest descriptions, and real rendering (no mocks)."""

from __future__ import annotations

import dataclasses

import cairosvg
import pytest
from PIL import Image, ImageChops

from pmg_engine.sticker_art.composer import describe, plan_compositions, render
from pmg_engine.sticker_art.faces import FACES, VARIANTS, surgery_svg
from pmg_engine.sticker_art.moods import STYLES
from pmg_engine.sticker_art.openmoji_files import has_art
from pmg_engine.sticker_art.render import art_svg, png_to_image

MOODS = ("joy", "sadness", "anger", "fear", "surprise", "disgust", "love", "tired", "neutral")
DEFAULT_WEIGHTS = [(0, 4), (1, 3), (2, 2), (3, 1), (4, 0)]


def test_moods_match_the_classifier_and_have_art() -> None:
    assert tuple(STYLES) == MOODS
    for look in STYLES.values():
        assert has_art(look.face_emoji)
        assert all(has_art(cue.symbol) for cue in look.cues if cue.symbol)
    assert all(has_art(variant) for moods in VARIANTS.values() for variant, _ in moods.values())


def test_default_weight_sets_map_to_the_balanced_compositions() -> None:
    plans = plan_compositions("🐼", "panda", "sadness", DEFAULT_WEIGHTS, seed=7)
    mood_only, strong, balanced, weak, pure = plans
    assert [c.preference_weight for c in plans] == pytest.approx([0, 1 / 3, 1, 1, 1])
    assert [c.target_weight for c in plans] == pytest.approx([1, 1, 1, 1 / 3, 0])
    assert (mood_only.face, mood_only.character, mood_only.caption is not None) == ("mood-emoji", None, True)
    assert strong.face == balanced.face == weak.face == "surgery"
    assert len(strong.cues) > len(balanced.cues) == 2 > len(weak.cues) == 1
    assert "blue tint" in strong.cues  # the panda is low-colour art
    assert balanced.caption and weak.caption is None
    assert (pure.face, pure.cues, pure.caption) == ("art", (), None)


def test_variants_win_over_surgery_and_characters_without_face_data_keep_their_art() -> None:
    assert plan_compositions("🐱", "cat", "love", [(2, 2)], seed=0)[0].face == "variant"
    assert plan_compositions("🐱", "cat", "tired", [(2, 2)], seed=0)[0].face == "surgery"
    otter = plan_compositions("🦦", "otter", "anger", [(2, 2)], seed=0)[0]
    assert otter.face == "art" and otter.cues and otter.caption
    assert "face unchanged" in describe(otter)


def test_no_character_means_the_mood_alone() -> None:
    plans = plan_compositions(None, "cat", "joy", [(2, 2), (4, 0)], seed=0)
    assert {c.face for c in plans} == {"mood-emoji"}
    assert all(c.character_name is None and "cat" not in describe(c) for c in plans)


@pytest.mark.parametrize("mood", MOODS)
def test_describe_mentions_character_iff_preference_and_mood_iff_target(mood: str) -> None:
    word = STYLES[mood].word
    for composition in plan_compositions("🐶", "dog", mood, DEFAULT_WEIGHTS, seed=1):
        text = describe(composition)
        assert ("dog" in text) == (composition.preference_weight > 0), text
        assert (word in text) == (composition.target_weight > 0), text
        if composition.caption:
            assert f"'{composition.caption}'" in text


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="not both zero"):
        plan_compositions("🐱", "cat", "joy", [(0, 0)], seed=0)
    with pytest.raises(ValueError, match="valid moods: joy, sadness"):
        plan_compositions("🐱", "cat", "hungry", [(2, 2)], seed=0)
    with pytest.raises(ValueError, match="no art"):
        plan_compositions("x", "x", "joy", [(2, 2)], seed=0)


def test_render_is_a_transparent_sticker_with_a_white_cut_out_border() -> None:
    composition = plan_compositions("🐱", "cat", "sadness", [(2, 2)], seed=3)[0]
    image = render(composition)
    assert (image.mode, image.size) == ("RGBA", (512, 512))
    for corner in [(0, 0), (511, 0), (0, 511), (511, 511)]:
        assert image.getpixel(corner)[3] == 0
    # Walking in from the left edge at mid-height, the first opaque pixel is the white outline.
    row = [image.getpixel((x, 240)) for x in range(256)]
    first = next(x for x, px in enumerate(row) if px[3] == 255)
    assert row[first][:3] == (255, 255, 255)


def test_render_is_deterministic_and_the_seed_changes_the_layout() -> None:
    plan = plan_compositions("🐶", "dog", "surprise", [(1, 3)], seed=0)[0]
    assert render(plan).tobytes() == render(plan).tobytes()
    other = dataclasses.replace(plan, seed=plan.seed + 1)
    assert render(plan).tobytes() != render(other).tobytes()
    assert render(plan, size=128).size == (128, 128)


@pytest.mark.parametrize("character", ["🐱", "🐶", "🐼", "☕", "🦦"])
def test_every_mood_renders(character: str) -> None:
    for mood in MOODS:
        for composition in plan_compositions(character, "friend", mood, [(1, 3), (2, 2)], seed=5):
            assert render(composition, size=128).getchannel("A").getbbox() is not None


def _full_art(svg: str) -> Image.Image:
    """The whole 72×72 art at 2 px per unit, untrimmed, so face coordinates map straight onto pixels."""
    png = cairosvg.svg2png(bytestring=svg.encode(), output_width=144, output_height=144)
    return png_to_image(png).convert("RGB")


@pytest.mark.parametrize("character", sorted(FACES))
def test_face_surgery_changes_the_face(character: str) -> None:
    plain = _full_art(art_svg(character))
    (lx, ly), (rx, ry) = FACES[character].eyes
    eyes = (int(lx * 2 - 10), int(min(ly, ry) * 2 - 10), int(rx * 2 + 10), int(max(ly, ry) * 2 + 10))
    far_corner = (0, 0, 16, 16)
    for mood in ("sadness", "love"):
        changed = ImageChops.difference(plain, _full_art(surgery_svg(character, mood)))
        assert changed.crop(eyes).getbbox() is not None, (character, mood)
        assert changed.crop(far_corner).getbbox() is None, (character, mood)
