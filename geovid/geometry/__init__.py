"""The geometry of the latent space: metrics, score estimators, measures and the BVP/IVP solvers.

``ScoreFn`` is the one type of a score function (docs/method.md §2): it maps points ``(m, D)`` to scores
``(m, D)``. The metric protocol is :class:`geovid.geometry.metrics.Metric`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

ScoreFn = Callable[[torch.Tensor], torch.Tensor]

__all__ = ["ScoreFn"]
