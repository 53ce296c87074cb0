"""Scene structure of the procedural world: objects, palette, random scenes and captions.

The world is a small CLEVR-like tabletop: a grey ground plane seen from above at an angle, with one to three
objects (sphere, cube, cylinder) in one of six well-separated colours and two sizes. A :class:`Scene` is pure
data (no pixels); :mod:`geovid.world.render` turns it into an image and :func:`caption` into a sentence.

Ground coordinates: ``x`` runs from 0 (left edge of the placement area) to 1 (right edge), ``y`` from 0 (nearest
to the camera, bottom of the image) to 1 (farthest, top of the image). Objects are drawn far-to-near
(painter's order, :meth:`Scene.draw_order`).

Caption grammar (see docs/world.md)::

    object   := "a" SIZE COLOUR SHAPE                     e.g. "a small green cylinder"
    caption  := object                                     (one object)
              | object RELATION object                     (two objects; RELATION from their ground offset:
                                                            "left of", "right of", "in front of", "behind")
              | object "," object "and" object             (three objects, listed left to right)
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from geovid.world.camera import half_width

#: Object albedo colours (RGB 0-255). Hues are spread ~45-80 degrees apart (0, 50, 129, 184, 229, 282) and all
#: are strongly saturated, so a grey ground, shading and mild VAE blur never make two of them confusable.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "yellow": (230, 200, 40),
    "green": (40, 170, 60),
    "cyan": (40, 190, 200),
    "blue": (45, 75, 210),
    "purple": (140, 50, 180),
}

#: Object shapes.
SHAPES: tuple[str, ...] = ("sphere", "cube", "cylinder")

#: Object sizes and their radius in world units (sphere radius, cube half-side x 1.25, cylinder radius).
SIZES: dict[str, float] = {"small": 0.42, "large": 0.64}

#: Minimum and maximum number of objects in a random scene.
MIN_OBJECTS, MAX_OBJECTS = 1, 3


@dataclass(frozen=True)
class SceneObject:
    """One object standing on the ground.

    Attributes:
        shape: one of :data:`SHAPES`.
        colour: a key of :data:`PALETTE`.
        size: ``"small"`` or ``"large"``.
        x: ground coordinate left (0) to right (1).
        y: ground coordinate near (0) to far (1).
        rotation: yaw in degrees (visible for cubes only).
    """

    shape: str
    colour: str
    size: str
    x: float
    y: float
    rotation: float = 0.0

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r} (known: {', '.join(SHAPES)})")
        if self.colour not in PALETTE:
            raise ValueError(f"unknown colour {self.colour!r} (known: {', '.join(PALETTE)})")
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r} (known: {', '.join(SIZES)})")

    @property
    def radius(self) -> float:
        """Radius in world units."""
        return SIZES[self.size]

    @property
    def phrase(self) -> str:
        """Noun phrase, e.g. ``"a small red sphere"``."""
        return f"a {self.size} {self.colour} {self.shape}"

    def moved(self, **changes: Any) -> SceneObject:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SceneObject:
        return cls(shape=str(d["shape"]), colour=str(d["colour"]), size=str(d["size"]), x=float(d["x"]),
                   y=float(d["y"]), rotation=float(d.get("rotation", 0.0)))


@dataclass(frozen=True)
class Scene:
    """A scene: objects on the ground plane (``seed`` records where it came from, ``None`` if hand-made)."""

    objects: tuple[SceneObject, ...] = field(default_factory=tuple)
    seed: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", tuple(self.objects))

    def draw_order(self) -> list[SceneObject]:
        """Objects far-to-near (larger ``y`` first), so nearer objects occlude farther ones."""
        return sorted(self.objects, key=lambda o: -o.y)

    @property
    def caption(self) -> str:
        return caption(self)

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "objects": [o.to_dict() for o in self.objects]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scene:
        seed = d.get("seed")
        return cls(objects=tuple(SceneObject.from_dict(o) for o in d.get("objects", [])),
                   seed=None if seed is None else int(seed))


# Placement area in world units (camera in camera.py): y in [0, 1] -> Z linearly; x in [0, 1] spans the
# visible width at that depth minus a margin for the largest object, so the area is the view's trapezoid and
# every object stays fully in frame.
GROUND_Z = (-1.3, 4.5)
_EDGE_MARGIN = 1.0


def ground_to_world(x: float, y: float) -> tuple[float, float]:
    """Ground coordinates (x, y) in [0, 1]^2 to world (X, Z)."""
    z = GROUND_Z[0] + y * (GROUND_Z[1] - GROUND_Z[0])
    hw = 0.97 * half_width(z) - _EDGE_MARGIN
    return (2.0 * x - 1.0) * hw, z


def world_to_ground(X: float, Z: float) -> tuple[float, float]:
    """Inverse of :func:`ground_to_world`."""
    y = (Z - GROUND_Z[0]) / (GROUND_Z[1] - GROUND_Z[0])
    hw = 0.97 * half_width(Z) - _EDGE_MARGIN
    return (X / hw + 1.0) / 2.0, y


def _overlaps(a: SceneObject, b: SceneObject, margin: float = 0.25) -> bool:
    ax, az = ground_to_world(a.x, a.y)
    bx, bz = ground_to_world(b.x, b.y)
    dist = math.hypot(ax - bx, az - bz)
    if dist < a.radius + b.radius + margin:
        return True
    # Also keep objects from hiding each other on screen: a near object in front of a far one at a similar x
    # occludes it, so demand some lateral offset when they are close in depth-ordered screen space.
    lateral = abs(ax - bx)
    return abs(az - bz) < 2.2 * (a.radius + b.radius) and lateral < 0.9 * (a.radius + b.radius)


def random_scene(seed: int, n_objects: int | None = None) -> Scene:
    """A random scene, deterministic in ``seed``.

    Objects in one scene have distinct colours (so counting objects by colour is unambiguous for the
    checker and captions never say "a red ... and a red ...") and do not overlap on the ground.

    Args:
        seed: any integer; the same seed always gives the same scene.
        n_objects: 1-3, or ``None`` for a random count (uniform over 1-3).

    Returns:
        The scene, with ``seed`` recorded.
    """
    if n_objects is not None and not MIN_OBJECTS <= n_objects <= MAX_OBJECTS:
        raise ValueError(f"n_objects must be {MIN_OBJECTS}-{MAX_OBJECTS}, got {n_objects}")
    rng = np.random.default_rng(int(seed) & 0xFFFFFFFFFFFFFFFF)
    n = int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1)) if n_objects is None else int(n_objects)
    colours = list(PALETTE)
    chosen = rng.permutation(len(colours))[:n]
    objs: list[SceneObject] = []
    for i in range(n):
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        size = "small" if rng.random() < 0.5 else "large"
        for _ in range(200):
            cand = SceneObject(shape=shape, colour=colours[int(chosen[i])], size=size,
                               x=float(rng.uniform(0.0, 1.0)), y=float(rng.uniform(0.0, 1.0)),
                               rotation=float(rng.uniform(0.0, 90.0)))
            if not any(_overlaps(cand, o) for o in objs):
                break
        else:  # pragma: no cover - 200 failures in a 3-object scene does not happen with these sizes
            size = "small"
            cand = cand.moved(size=size)
        objs.append(cand)
    return Scene(objects=tuple(objs), seed=int(seed))


def relation(a: SceneObject, b: SceneObject) -> str:
    """Spatial relation of ``a`` to ``b`` on the ground: "left of", "right of", "in front of" or "behind".

    The dominant ground axis decides; depth offsets count a little less because they are foreshortened on
    screen (a scene that looks side-by-side should read "left of").
    """
    ax, az = ground_to_world(a.x, a.y)
    bx, bz = ground_to_world(b.x, b.y)
    dx, dz = ax - bx, az - bz
    if abs(dx) >= 0.6 * abs(dz):
        return "left of" if dx < 0 else "right of"
    return "in front of" if dz < 0 else "behind"


def caption(scene: Scene) -> str:
    """Caption generated from the scene structure (grammar in the module docstring).

    Examples: ``"a small green cylinder"``, ``"a large red sphere left of a small blue cube"``,
    ``"a small red sphere, a large cyan cube and a small purple cylinder"``.
    """
    objs = list(scene.objects)
    if not objs:
        return "an empty floor"
    if len(objs) == 1:
        return objs[0].phrase
    if len(objs) == 2:
        a, b = sorted(objs, key=lambda o: o.x)
        return f"{a.phrase} {relation(a, b)} {b.phrase}"
    ordered = sorted(objs, key=lambda o: o.x)
    return ", ".join(o.phrase for o in ordered[:-1]) + " and " + ordered[-1].phrase


_PHRASE = re.compile(r"\b(?:an?\s+)?(?:(small|large)\s+)?(" + "|".join(PALETTE) + r")\s+(" + "|".join(SHAPES)
                     + r")s?\b")


def parse_caption(text: str) -> list[dict[str, str | None]]:
    """Objects named in a caption: a list of ``{"size", "colour", "shape"}`` (size may be ``None``).

    Accepts the grammar of :func:`caption` and looser text ("red sphere and blue cube"); words that are not
    palette colours or shapes are ignored. Only the scene part is read: a clip caption's motion clause after
    ``";"`` (e.g. ``"; the red cube moves to the left"``) names an object again and is skipped.
    """
    scene_part = text.split(";", 1)[0]
    return [{"size": m.group(1), "colour": m.group(2), "shape": m.group(3)}
            for m in _PHRASE.finditer(scene_part.lower())]
