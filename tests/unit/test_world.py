"""The procedural world: scenes, captions, rendering, clips and video writing."""

from __future__ import annotations

import itertools
import math
import time

import cv2
import numpy as np
import pytest

from geovid.world.clips import JITTER_SIGMA, MOTIONS, clip_scenes, make_clip, write_clip
from geovid.world.render import render, render_batch, render_seed
from geovid.world.scene import (
    PALETTE,
    SHAPES,
    Scene,
    SceneObject,
    caption,
    ground_to_world,
    parse_caption,
    random_scene,
    world_to_ground,
)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(255.0 ** 2 / max(mse, 1e-12))


# --- scenes and captions -----------------------------------------------------------------------------------


def test_palette_has_six_well_separated_colours() -> None:
    assert len(PALETTE) >= 6 and set(SHAPES) == {"sphere", "cube", "cylinder"}
    hsv = cv2.cvtColor(np.array([list(PALETTE.values())], np.float32) / 255, cv2.COLOR_RGB2HSV)[0]
    for (h1, _, _), (h2, _, _) in itertools.combinations(hsv, 2):
        d = abs(h1 - h2) % 360
        assert min(d, 360 - d) >= 40, "palette hues must be >= 40 degrees apart"
    assert hsv[:, 1].min() > 0.7, "palette colours must be strongly saturated"


def test_random_scene_is_deterministic_and_valid() -> None:
    counts = set()
    for seed in range(200):
        s = random_scene(seed)
        assert s == random_scene(seed)
        assert 1 <= len(s.objects) <= 3
        counts.add(len(s.objects))
        assert len({o.colour for o in s.objects}) == len(s.objects), "colours are distinct within a scene"
        for o in s.objects:
            assert 0 <= o.x <= 1 and 0 <= o.y <= 1
    assert counts == {1, 2, 3}
    assert random_scene(1) != random_scene(2)
    assert len(random_scene(5, n_objects=3).objects) == 3
    with pytest.raises(ValueError):
        random_scene(0, n_objects=4)


def test_scene_dict_round_trip_and_validation() -> None:
    s = random_scene(11)
    assert Scene.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError):
        SceneObject("pyramid", "red", "small", 0.5, 0.5)
    with pytest.raises(ValueError):
        SceneObject("cube", "magenta", "small", 0.5, 0.5)


def test_ground_coordinates_round_trip() -> None:
    for x, y in [(0.0, 0.0), (0.3, 0.7), (1.0, 1.0)]:
        assert np.allclose(world_to_ground(*ground_to_world(x, y)), (x, y))


def test_caption_grammar() -> None:
    red = SceneObject("sphere", "red", "large", 0.2, 0.5)
    blue = SceneObject("cube", "blue", "small", 0.8, 0.5)
    green = SceneObject("cylinder", "green", "small", 0.5, 0.5)
    assert caption(Scene((green,))) == "a small green cylinder"
    assert caption(Scene((blue, red))) == "a large red sphere left of a small blue cube"
    assert caption(Scene((blue, red, green))) == \
        "a large red sphere, a small green cylinder and a small blue cube"
    near, far = green.moved(x=0.5, y=0.05), red.moved(x=0.52, y=0.95)
    assert caption(Scene((far, near))) in ("a small green cylinder in front of a large red sphere",
                                           "a large red sphere behind a small green cylinder")
    for seed in range(50):
        s = random_scene(seed)
        named = parse_caption(caption(s))
        assert sorted((d["colour"], d["shape"], d["size"]) for d in named) == \
            sorted((o.colour, o.shape, o.size) for o in s.objects)


# --- rendering -----------------------------------------------------------------------------------------------


def test_render_shape_dtype_and_determinism() -> None:
    img, cap, scene = render_seed(3)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert cap == caption(scene)
    again, _, _ = render_seed(3)
    assert np.array_equal(img, again), "same seed must give identical pixels"
    assert not np.array_equal(img, render_seed(4)[0])
    assert render(scene, 32).shape == (32, 32, 3)
    assert render(scene, 96).shape == (96, 96, 3)


def test_render_draws_every_object_in_its_colour() -> None:
    for seed in range(20):
        scene = random_scene(seed)
        hsv = cv2.cvtColor(render(scene), cv2.COLOR_RGB2HSV_FULL).astype(int)
        sat = hsv[..., 1] > 90
        for o in scene.objects:
            ref = cv2.cvtColor(np.array([[PALETTE[o.colour]]], np.uint8), cv2.COLOR_RGB2HSV_FULL)[0, 0, 0]
            d = np.abs(hsv[..., 0] - int(ref))
            near = sat & (np.minimum(d, 256 - d) < 10)
            assert near.sum() >= 10, f"{o.colour} {o.shape} not visible in scene {seed}"
        # The ground (everything unsaturated) is grey.
        rgb = render(scene).astype(int)
        ground = ~sat
        assert np.abs(rgb[ground].max(1) - rgb[ground].min(1)).mean() < 10


def test_render_is_anti_aliased() -> None:
    scene = Scene((SceneObject("cube", "blue", "large", 0.5, 0.3, rotation=20.0),))
    img = render(scene).astype(np.float32)
    ground = render(Scene(())).astype(np.float32)
    diff = np.abs(img - ground).max(-1)
    # Pixels that differ a little from the ground but are not fully object: partial coverage at the edges.
    partial = (diff > 8) & (diff < 0.6 * diff.max())
    assert partial.sum() >= 8


def test_objects_stay_inside_the_frame() -> None:
    for x, y, shape in itertools.product((0.0, 1.0), (0.0, 1.0), SHAPES):
        img = render(Scene((SceneObject(shape, "red", "large", x, y, rotation=45.0),)))
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        sat = hsv[..., 1] > 80
        assert not (sat[0].any() or sat[-1].any() or sat[:, 0].any() or sat[:, -1].any())


def test_render_batch_matches_render_seed_and_is_fast() -> None:
    imgs, caps = render_batch([5, 6, 7])
    assert imgs.shape == (3, 64, 64, 3) and imgs.dtype == np.uint8
    for i, s in enumerate([5, 6, 7]):
        img, cap, _ = render_seed(s)
        assert np.array_equal(imgs[i], img) and caps[i] == cap
    render_batch(range(10))
    t = time.perf_counter()
    render_batch(range(100, 300))
    rate = 200 / (time.perf_counter() - t)
    assert rate > 60, f"render_batch too slow: {rate:.0f} scenes/s"  # ~600/s on one idle core


# --- clips ----------------------------------------------------------------------------------------------------


def _mover_track(scenes: list[Scene]) -> np.ndarray:
    """World (X, Z) of the object that differs between the first and last scene."""
    first = scenes[0].objects
    last = scenes[-1].objects
    idx = next(i for i in range(len(first)) if first[i] != last[i])
    return np.array([ground_to_world(s.objects[idx].x, s.objects[idx].y) for s in scenes])


@pytest.mark.parametrize("motion", MOTIONS)
def test_make_clip_basic(motion: str) -> None:
    frames, scenes, cap = make_clip(motion, frames=8, seed=4)
    assert len(frames) == len(scenes) == 8
    assert all(f.shape == (64, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert cap.startswith(caption(scenes[0]))
    again, _, cap2 = make_clip(motion, frames=8, seed=4)
    assert cap2 == cap and all(np.array_equal(a, b) for a, b in zip(frames, again))
    assert not np.array_equal(frames[0], frames[-1])


def test_linear_accelerate_orbit_kinematics() -> None:
    for seed in range(5):
        lin = _mover_track(clip_scenes("linear", 10, seed)[0])
        v = np.diff(lin, axis=0)
        assert np.allclose(v, v[0], atol=1e-6), "constant velocity"
        acc = _mover_track(clip_scenes("accelerate", 10, seed)[0])
        a = np.diff(acc, n=2, axis=0)
        assert np.allclose(a, a[0], atol=1e-6) and np.linalg.norm(a[0]) > 0, "constant acceleration"
        assert np.allclose(acc[1] - acc[0], a[0] / 2, atol=1e-6), "starts from rest"
        orb = _mover_track(clip_scenes("orbit", 12, seed)[0])
        # Circle through the points: equal step lengths and equal turning angles.
        steps = np.linalg.norm(np.diff(orb, axis=0), axis=1)
        assert np.allclose(steps, steps[0], rtol=1e-4)
        d = np.diff(orb, axis=0)
        turn = np.cross(d[:-1], d[1:])
        assert np.all(np.sign(turn) == np.sign(turn[0])) and abs(turn[0]) > 1e-4


def test_appear_colour_and_jitter() -> None:
    scenes, cap = clip_scenes("appear", 9, 2)
    counts = [len(s.objects) for s in scenes]
    assert counts[:4] == [counts[0]] * 4 and counts[4:] == [counts[0] + 1] * 5 and "appears" in cap
    scenes, cap = clip_scenes("colour", 9, 2)
    before = {o.colour for o in scenes[0].objects}
    after = {o.colour for o in scenes[-1].objects}
    assert len(before ^ after) == 2 and "turns" in cap
    assert [o.x for o in scenes[0].objects] == [o.x for o in scenes[-1].objects]
    lin = _mover_track(clip_scenes("linear", 12, 6)[0])
    jit_scenes, jcap = clip_scenes("jitter", 12, 6)
    jit = _mover_track(jit_scenes)
    dev = np.linalg.norm(jit - lin, axis=1)
    assert "shaking" in jcap
    assert dev.max() > 0.3 * JITTER_SIGMA and dev.max() < 6 * JITTER_SIGMA


def test_bad_clip_arguments() -> None:
    from geovid.errors import InputError

    with pytest.raises(InputError):
        make_clip("spin", 8, 0)
    with pytest.raises(InputError):
        make_clip("linear", 1, 0)


# --- video files ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".mp4", ".avi", ".webm", ".mkv", ".mov"])
def test_write_clip_reads_back_with_decord(tmp_path, ext: str) -> None:
    decord = pytest.importorskip("decord")
    frames, _, _ = make_clip("linear", 10, 1)
    path = write_clip(tmp_path / f"clip{ext}", motion="linear", frames=10, fps=8, seed=1,
                      png_dir=tmp_path / "png")
    assert path.is_file()
    vr = decord.VideoReader(str(path), ctx=decord.cpu(0))
    assert len(vr) == 10
    got = vr.get_batch(list(range(10))).asnumpy()
    assert got.shape == (10, 64, 64, 3)
    assert min(_psnr(g, f) for g, f in zip(got, frames)) > 30
    # Random access (no B-frames / hidden frames confuse the index).
    assert _psnr(vr[7].asnumpy(), frames[7]) > 30
    pngs = sorted((tmp_path / "png").glob("frame_*.png"))
    assert len(pngs) == 10
    assert np.array_equal(cv2.imread(str(pngs[3]))[..., ::-1], frames[3])


def test_write_video_odd_size_gif_strip_grid(tmp_path) -> None:
    decord = pytest.importorskip("decord")
    from PIL import Image

    from geovid.errors import InputError
    from geovid.media.writers import make_grid, make_strip, write_gif, write_video

    frames = [render(random_scene(s), 33) for s in range(4)]
    p = write_video(frames, tmp_path / "odd.mp4", fps=4)
    vr = decord.VideoReader(str(p))
    assert len(vr) == 4 and vr[0].shape == (34, 34, 3)
    assert _psnr(vr[2].asnumpy()[:33, :33], frames[2]) > 28
    g = write_gif(frames, tmp_path / "a.gif", fps=4)
    with Image.open(g) as im:
        assert im.n_frames == 4
    strip = make_strip(frames, border=2)
    assert strip.shape == (37, 4 * 33 + 5 * 2, 3)
    assert np.array_equal(strip[2:35, 2:35], frames[0])
    assert make_strip(frames, n=2).shape[1] == 2 * 33 + 3 * 2
    grid = make_grid([frames, frames[:2]])
    assert grid.shape == (2 + 2 * (33 + 2), 4 * 33 + 5 * 2, 3)
    labelled = make_grid([frames, frames[:2]], labels=["rendered", "decoded"])
    assert labelled.shape[0] == grid.shape[0] and labelled.shape[1] > grid.shape[1]
    label_col = labelled[:, : labelled.shape[1] - grid.shape[1]]
    assert (label_col < 128).any(), "labels are drawn"
    with pytest.raises(InputError):
        write_video(frames, tmp_path / "x.flv")
    with pytest.raises(InputError):
        write_video([], tmp_path / "x.mp4")


def test_moved_pair_moves_one_object_and_keeps_both_scenes_valid() -> None:
    from geovid.world.checker import check
    from geovid.world.clips import moved_pair
    from geovid.world.render import render

    for seed in (0, 11, 21):
        a, b, text = moved_pair(seed)
        key = lambda o: (o.colour, o.shape, o.size)  # noqa: E731
        assert sorted(map(key, a.objects)) == sorted(map(key, b.objects))  # same objects
        moved = [o for o in b.objects if (o.x, o.y) not in {(p.x, p.y) for p in a.objects}]
        assert len(moved) == 1
        for scene in (a, b):  # in view and plausible: the checker accepts both with A's caption
            r = check(render(scene), text)
            assert r.plausible and r.matches_caption, r.reasons
