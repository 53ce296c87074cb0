"""Export rendered scenes to disk: ``NNNNNN.png`` files plus ``captions.jsonl`` (one JSON object a line).

Training code can also render in memory with :func:`geovid.world.render.render_batch`; this is for tools that
want files.
"""

from __future__ import annotations

import json
from pathlib import Path

from geovid.errors import InputError
from geovid.progress import ProgressFn, null_progress
from geovid.runs.files import atomic_write_bytes


def write_dataset(out_dir: str | Path, n: int, start_seed: int = 0, size: int = 64,
                  progress: ProgressFn = null_progress) -> Path:
    """Render scenes ``start_seed .. start_seed + n - 1`` into ``out_dir``.

    Each line of ``captions.jsonl`` is ``{"file": "000000.png", "seed": 0, "caption": "...", "scene": {...}}``
    (``scene`` is :meth:`Scene.to_dict`). Existing PNGs of the same names are overwritten; the captions file is
    written atomically at the end.

    Args:
        out_dir: folder (created if missing).
        n: number of scenes (>= 1).
        start_seed: seed of the first scene.
        size: image size in pixels.
        progress: ``progress(phase, done, total, info)``.

    Returns:
        The path of ``captions.jsonl``.
    """
    from PIL import Image

    from geovid.world.render import render
    from geovid.world.scene import caption, random_scene

    if n < 1:
        raise InputError(f"--n must be at least 1, got {n}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    width = max(6, len(str(start_seed + n - 1)))
    lines = []
    step = max(1, n // 100)
    for i in range(n):
        seed = start_seed + i
        scene = random_scene(seed)
        name = f"{seed:0{width}d}.png"
        Image.fromarray(render(scene, size)).save(out / name)
        lines.append(json.dumps({"file": name, "seed": seed, "caption": caption(scene), "scene": scene.to_dict()}))
        if (i + 1) % step == 0 or i + 1 == n:
            progress("render", i + 1, n, {})
    return atomic_write_bytes(out / "captions.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))
