"""Measure the plausibility checker: accept rate on rendered scenes, reject rates on corrupted ones.

``python -m geovid.world.validate [N]`` prints the table that docs/world.md quotes. The corruptions are the ones
the checker must catch (cross-fades of two scenes, additive Gaussian noise, Gaussian blur) plus a mild
"VAE-like" softness it must tolerate.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import cv2
import numpy as np

from geovid.world.checker import Thresholds, check
from geovid.world.render import render_batch


def _fade(rng: np.random.Generator, lo: float, hi: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def f(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        al = rng.uniform(lo, hi)
        return (al * a.astype(np.float32) + (1 - al) * b.astype(np.float32) + 0.5).astype(np.uint8)
    return f


def _noise(rng: np.random.Generator, sigma: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return lambda a, _b: np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).astype(np.uint8)


def _blur(sigma: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    return lambda a, _b: cv2.GaussianBlur(a, (0, 0), sigma)


def _soft(rng: np.random.Generator) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def f(a: np.ndarray, _b: np.ndarray) -> np.ndarray:
        b = cv2.GaussianBlur(a.astype(np.float32), (0, 0), 0.7) + rng.normal(0, 2.0, a.shape)
        return np.clip(b, 0, 255).astype(np.uint8)
    return f


def evaluate(n: int = 300, start_seed: int = 5_000_000, thresholds: Thresholds | str | None = None
             ) -> list[dict[str, float | str]]:
    """Rates of the checker on ``n`` fresh scenes per condition.

    Returns rows ``{"condition", "accepted", "caption_match", "colours_match"}`` (fractions).
    """
    imgs, caps = render_batch(range(start_seed, start_seed + n))
    others, _ = render_batch(range(start_seed + 10 * n, start_seed + 11 * n))
    rng = np.random.default_rng(start_seed)
    conditions: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray] | None] = {
        "rendered": None,
        "VAE-like softness (blur 0.7 px + noise 2/255)": _soft(rng),
        "blur sigma 1.0 px": _blur(1.0),
        "cross-fade alpha 0.3-0.7": _fade(rng, 0.3, 0.7),
        "cross-fade alpha 0.2-0.3 / 0.7-0.8": None,  # filled below
        "noise sigma 10/255": _noise(rng, 10),
        "noise sigma 20/255": _noise(rng, 20),
        "blur sigma 1.5 px": _blur(1.5),
        "blur sigma 2.0 px": _blur(2.0),
    }
    edge = _fade(rng, 0.2, 0.3)
    conditions["cross-fade alpha 0.2-0.3 / 0.7-0.8"] = lambda a, b: edge(a, b) if rng.random() < 0.5 else edge(b, a)
    rows: list[dict[str, float | str]] = []
    for name, fn in conditions.items():
        res = [check(a if fn is None else fn(a, b), c, thresholds) for a, b, c in zip(imgs, others, caps)]
        rows.append({"condition": name, "accepted": float(np.mean([r.plausible for r in res])),
                     "caption_match": float(np.mean([bool(r.matches_caption) for r in res])),
                     "colours_match": float(np.mean([bool(r.colours_match) for r in res]))})
    return rows


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 300
    t = time.perf_counter()
    rows = evaluate(n)
    print(f"| condition (n={n} each) | accepted | caption match | colours match |")
    print("| --- | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['condition']} | {r['accepted']:.1%} | {r['caption_match']:.1%} | {r['colours_match']:.1%} |")
    print(f"\n({time.perf_counter() - t:.1f} s)")


if __name__ == "__main__":
    main()
