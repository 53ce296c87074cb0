"""geovid: probability-density geodesics in the latent space of image diffusion models.

The public API is small and re-exported lazily so that ``import geovid`` stays cheap
(the CLI's ``--help`` must answer in well under a second). The method — every formula and number — is
``docs/method.md`` in the repository (cited as ``docs/method.md §n`` in the code); see ``docs/`` for the rest.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it; resolved on first attribute access (PEP 562).
_LAZY = {
    "GeovidError": "geovid.errors",
    "Backbone": "geovid.backbones.base",
    "GaussianMixtureBackbone": "geovid.backbones.analytic",
    "DensityMetric": "geovid.geometry.metrics",
    "ScoreMetric": "geovid.geometry.metrics",
    "make_estimator": "geovid.geometry.estimators",
    "solve_bvp": "geovid.geometry.bvp",
    "solve_ivp": "geovid.geometry.ivp",
    "path_measures": "geovid.geometry.measures",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'geovid' has no attribute {name!r}")
