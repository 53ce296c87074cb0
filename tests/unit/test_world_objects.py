"""The object/ghost count of docs/method.md §8.6 (geovid.world.objects): independent of any model, exact on
rendered scenes, and it sees the ghosts of cross-fades and the doubles a bad interpolation invents."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from geovid.world.clips import clip_scenes, moved_pair
from geovid.world.objects import clean_rate, count_objects, frame_is_clean, scene_colours
from geovid.world.render import render
from geovid.world.scene import Scene, random_scene

N = 200  # fresh seeds, never used while setting the thresholds (those were 1 500 000+ and 1 600 000+)


def test_rendered_scenes_count_exactly_their_objects_and_no_ghost() -> None:
    for seed in range(9_000_000, 9_000_000 + N):
        scene = random_scene(seed)
        c = count_objects(render(scene))
        assert c.colours == scene_colours(scene) and c.n_ghosts == 0, (seed, c.to_dict())
        assert frame_is_clean(c, [scene_colours(scene)])


@pytest.mark.parametrize("weight", [0.5, 0.35])
def test_a_cross_fade_of_a_moved_object_shows_ghosts(weight: float) -> None:
    ghosted = 0
    for seed in range(9_100_000, 9_100_000 + 50):
        a, b, _ = moved_pair(seed)
        fade = ((1 - weight) * render(a).astype(float) + weight * render(b).astype(float)).round().astype(np.uint8)
        c = count_objects(fade)
        ghosted += c.n_ghosts > 0
        assert not frame_is_clean(c, [scene_colours(a)])
    assert ghosted >= 48


def test_a_double_and_a_missing_object_are_not_clean() -> None:
    a, b, _ = moved_pair(9_200_000)
    mover = next(o for o, p in zip(a.objects, b.objects) if o != p)
    double = Scene(objects=(*a.objects, next(p for o, p in zip(a.objects, b.objects) if o != p)))
    c = count_objects(render(double))
    assert c.colours[mover.colour] == 2 and not frame_is_clean(c, [scene_colours(a)])
    empty = count_objects(render(Scene(objects=())))
    assert empty.n_objects == 0 and empty.n_ghosts == 0 and not frame_is_clean(empty, [scene_colours(a)])


def test_either_endpoint_counts_for_colour_changes_and_appearances() -> None:
    for kind in ("colour", "appear"):
        scenes, _ = clip_scenes(kind, frames=2, seed=9_300_000)
        expected = [scene_colours(scenes[0]), scene_colours(scenes[-1])]
        assert expected[0] != expected[1]
        frames = np.stack([render(scenes[0]), render(scenes[-1])])
        rate, rows = clean_rate(frames, expected)
        assert rate == 1.0 and [r["clean"] for r in rows] == [True, True]
        assert clean_rate(frames, expected[:1])[0] == 0.5


def test_input_forms() -> None:
    img = render(random_scene(9_400_000))
    ref = count_objects(img).colours
    assert count_objects(img.astype(np.float32) / 255.0).colours == ref
    assert count_objects(np.concatenate([img, np.full((*img.shape[:2], 1), 255, np.uint8)], -1)).colours == ref
    assert count_objects(np.full((64, 64, 3), 128, np.uint8)).colours == Counter()
    with pytest.raises(ValueError, match="RGB"):
        count_objects(np.zeros((8, 8)))
