"""The plausibility checker: accepts rendered scenes, rejects corrupted ones and photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from geovid.world.checker import PRESETS, Thresholds, check
from geovid.world.clips import make_clip
from geovid.world.render import render, render_batch
from geovid.world.scene import PALETTE, Scene, SceneObject, random_scene

N = 300  # fresh scenes (seeds never used while tuning the thresholds: those were 100000+ and 300000+)


@pytest.fixture(scope="module")
def scenes() -> tuple[np.ndarray, list[str], np.ndarray]:
    imgs, caps = render_batch(range(7_000_000, 7_000_000 + N))
    others, _ = render_batch(range(8_000_000, 8_000_000 + N))
    return imgs, caps, others


def test_rendered_scenes_are_accepted_and_match_their_captions(scenes) -> None:
    imgs, caps, _ = scenes
    results = [check(im, c) for im, c in zip(imgs, caps)]
    accept = np.mean([r.plausible for r in results])
    match = np.mean([bool(r.matches_caption) for r in results])
    colours = np.mean([bool(r.colours_match) for r in results])
    assert accept >= 0.98, f"accepted {accept:.3f}"
    assert match >= 0.95, f"caption matches {match:.3f}"
    assert colours >= 0.98
    r = results[0]
    assert r.objects and {"colour", "bbox", "area", "shape"} <= set(r.objects[0])
    assert all(o["colour"] in PALETTE for rr in results for o in rr.objects)


def _rejection(images, caps) -> float:
    return float(np.mean([not check(im, c).plausible for im, c in zip(images, caps)]))


def test_cross_fades_are_rejected(scenes) -> None:
    imgs, caps, others = scenes
    rng = np.random.default_rng(1)
    alphas = rng.uniform(0.3, 0.7, N)
    fades = [(a * x.astype(np.float32) + (1 - a) * y.astype(np.float32) + 0.5).astype(np.uint8)
             for a, x, y in zip(alphas, imgs, others)]
    assert _rejection(fades, caps) >= 0.9


def test_noise_is_rejected(scenes) -> None:
    imgs, caps, _ = scenes
    rng = np.random.default_rng(2)
    noisy = [np.clip(x + rng.normal(0, 20, x.shape), 0, 255).astype(np.uint8) for x in imgs]
    assert _rejection(noisy, caps) >= 0.9
    assert any("noisy" in r for r in check(noisy[0]).reasons)


def test_blur_is_rejected(scenes) -> None:
    imgs, caps, _ = scenes
    blurred = [cv2.GaussianBlur(x, (0, 0), 1.5) for x in imgs]
    assert _rejection(blurred, caps) >= 0.9
    assert any("blurred" in r for r in check(blurred[0]).reasons)


def test_mild_softness_is_tolerated(scenes) -> None:
    """A good VAE reconstruction is slightly soft and grainy: blur sigma 0.7 plus noise sigma 2/255."""
    imgs, caps, _ = scenes
    rng = np.random.default_rng(3)
    soft = [np.clip(cv2.GaussianBlur(x.astype(np.float32), (0, 0), 0.7) + rng.normal(0, 2, x.shape), 0, 255)
            .astype(np.uint8) for x in imgs[:100]]
    assert 1 - _rejection(soft, caps[:100]) >= 0.95


def test_moving_object_cross_fade_is_a_double() -> None:
    frames, _, cap = make_clip("linear", 2, seed=12)
    mid = ((frames[0].astype(np.float32) + frames[1]) / 2 + 0.5).astype(np.uint8)
    res = check(mid, cap)
    assert not res.plausible
    assert any("duplicate" in r or "semi-transparent" in r for r in res.reasons)
    first = check(frames[0], cap)
    assert first.plausible and check(frames[1], cap).plausible
    assert first.matches_caption, "a clip caption's motion clause does not count as another object"


def test_faint_cross_fades_are_rejected(scenes) -> None:
    imgs, caps, others = scenes
    fades = [(0.75 * x.astype(np.float32) + 0.25 * y.astype(np.float32) + 0.5).astype(np.uint8)
             for x, y in zip(imgs[:100], others[:100])]
    assert _rejection(fades, caps[:100]) >= 0.9


def test_validate_table_smoke() -> None:
    from geovid.world.validate import evaluate

    rows = evaluate(6, start_seed=9_000_000)
    by = {r["condition"]: r for r in rows}
    assert by["rendered"]["accepted"] == 1.0 and by["noise sigma 20/255"]["accepted"] == 0.0


def test_wrong_caption_colours_do_not_match() -> None:
    scene = Scene((SceneObject("sphere", "red", "large", 0.3, 0.4), SceneObject("cube", "blue", "large", 0.7, 0.4)))
    img = render(scene)
    good = check(img, "a large red sphere left of a large blue cube")
    assert good.plausible and good.colours_match and good.matches_caption
    bad = check(img, "a large green sphere left of a large blue cube")
    assert bad.colours_match is False and bad.matches_caption is False
    assert bad.plausible, "plausibility does not depend on the caption"
    assert check(img, "a large red sphere").matches_caption is False  # count differs
    assert check(img).matches_caption is None and check(img).colours_match is None


def test_confident_shape_guesses_disagreeing_with_the_caption() -> None:
    img = render(Scene((SceneObject("sphere", "yellow", "large", 0.5, 0.2),)))
    res = check(img, "a large yellow cube")
    assert res.objects[0]["shape"] == "sphere" and res.colours_match and res.matches_caption is False


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_photos_are_rejected(name: str) -> None:
    data = pytest.importorskip("skimage.data")
    photo = cv2.resize(getattr(data, name)()[..., :3], (64, 64), interpolation=cv2.INTER_AREA)
    assert not check(photo).plausible


def test_empty_floor_and_flat_images_are_rejected() -> None:
    assert not check(render(Scene(()))).plausible
    assert not check(np.full((64, 64, 3), 128, np.uint8)).plausible
    assert not check(np.zeros((64, 64, 3), np.uint8)).plausible


def test_strictness_presets_and_float_input() -> None:
    img = render(random_scene(42))
    assert check(img.astype(np.float32) / 255).plausible
    rgba16 = np.concatenate([img, np.full((*img.shape[:2], 1), 255, np.uint8)], -1).astype(np.uint16) * 257
    assert check(rgba16).stats == check(img).stats
    blurred = cv2.GaussianBlur(img, (0, 0), 1.2)
    s = check(blurred).stats["sharpness"]
    assert PRESETS["strict"].min_sharpness > PRESETS["default"].min_sharpness > PRESETS["lenient"].min_sharpness
    assert check(blurred, thresholds=Thresholds(min_sharpness=s + 0.05)).plausible is False
    assert check(blurred, thresholds=Thresholds(min_sharpness=s - 0.05)).plausible is True
    with pytest.raises(ValueError):
        check(np.zeros((64, 64), np.uint8))
