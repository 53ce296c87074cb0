"""Built-in controls of the video analysis (docs/method.md §7.7, docs/analysis.md "Controls").

Two versions of the clip's own path, with the same two endpoints, analysed like the clip (same α, estimator,
draws, trust region and solver budget):

* ``shuffled`` — the interior frames in a fixed random order (negative control): a clip whose frames are
  shuffled is not a motion, so an analysis that measures something must find it further from a geodesic
  (a larger excess). A verdict the shuffled clip also receives is flagged as uninformative.
* ``reversed`` — the frames in reverse order (invariance check): a geodesic does not know the direction of
  time, so the reversed clip's excess and mean ‖r(γ_v)‖ must match the clip's up to estimator noise (its
  frame i sees the draws of index i, which belonged to another frame on the clip).

No frame is encoded again: a control is a permutation of the clip's points.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

#: The controls, in the order they appear in tables and plots.
CONTROL_NAMES: tuple[str, ...] = ("shuffled", "reversed")
#: The reversed clip counts as invariant when its excess and its mean ‖r(γ_v)‖ are within this relative
#: difference of the clip's (issue 12; docs/analysis.md).
REVERSAL_TOLERANCE = 0.10


def shuffle_order(n: int, seed: int = 0) -> list[int]:
    """A fixed random order of the frames 0…n−1 with the endpoints kept and no interior frame in place
    (when n ≥ 4): the negative control's permutation, deterministic in ``seed``."""
    if n < 3:
        raise ValueError(f"need at least 3 frames, got {n}")
    gen = torch.Generator().manual_seed(int(seed) * 7919 + 101)
    inner = list(range(1, n - 1))
    for _ in range(100):
        perm = [inner[i] for i in torch.randperm(len(inner), generator=gen).tolist()]
        if len(inner) < 2 or all(p != q for p, q in zip(perm, inner)):
            break
    return [0, *perm, n - 1]


def control_orders(n: int, seed: int = 0) -> dict[str, list[int]]:
    """Frame order of each control: ``{"shuffled": [...], "reversed": [...]}``."""
    return {"shuffled": shuffle_order(n, seed), "reversed": list(range(n - 1, -1, -1))}


def control_paths(x: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """The controls' video paths: the clip's points in the control orders."""
    return {name: x[order] for name, order in control_orders(x.shape[0], seed).items()}


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b) if b and math.isfinite(a) and math.isfinite(b) else math.nan


def control_summary(clip: Mapping[str, Any], controls: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Compare the controls with the clip.

    Args:
        clip: the clip's summary part (``geodesic_excess``, ``log_geodesic_excess``, ``tests``, mean ‖r(γ_v)‖ as
            ``mean_residual_video``).
        controls: per control the same keys.

    Returns:
        Per control its numbers plus ``shuffled.larger_excess`` (the negative control is further from a
        geodesic), ``reversed.excess_relative_difference`` / ``residual_relative_difference`` and ``invariant``,
        and ``informative`` (the shuffled clip does not get the clip's verdict).
    """
    out: dict[str, Any] = {}
    lx = float(clip.get("log_geodesic_excess", math.nan))
    passed = _passed(clip.get("tests", {}))
    for name, c in controls.items():
        row = dict(c)
        lc = float(c.get("log_geodesic_excess", math.nan))
        if name == "shuffled":
            row["larger_excess"] = bool(math.isfinite(lc) and math.isfinite(lx) and lc > lx)
            row["same_verdict"] = _passed(c.get("tests", {})) == passed
        if name == "reversed":
            row["excess_relative_difference"] = (abs(math.expm1(lc - lx)) if math.isfinite(lc) and math.isfinite(lx)
                                                 else math.nan)
            row["residual_relative_difference"] = _rel(float(c.get("mean_residual_video", math.nan)),
                                                       float(clip.get("mean_residual_video", math.nan)))
            row["invariant"] = bool(row["excess_relative_difference"] <= REVERSAL_TOLERANCE
                                    and row["residual_relative_difference"] <= REVERSAL_TOLERANCE)
        out[name] = row
    if "shuffled" in out:
        # docs/method.md §7.7: a verdict (which tests pass) the shuffled clip also receives is uninformative.
        out["informative"] = not out["shuffled"]["same_verdict"]
    return out


def _passed(tests: Mapping[str, Any]) -> tuple[bool, ...]:
    return tuple(bool((tests.get(k) or {}).get("passed")) for k in ("i", "ii", "iii"))
