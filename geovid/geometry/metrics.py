"""Riemannian metrics on the latent space: a metric is a pluggable object (docs/method.md §3, §4).

Each metric gives, for the solvers and measures,

* ``force(x, T, s, score_fn)``: the part of the geodesic gradient that is not the curve's own curvature, so that
  r = N[P κ] + force (normal to the unit tangent T, projected onto the sphere where on);
* ``acceleration(x, v, s, score_fn)``: the right-hand side of the geodesic ODE for the IVP (docs/method.md §6);
* ``segment_log_costs`` / ``energy``: length and energy of a discrete path, in log space where needed.

Density metric (docs/method.md §3): G = p^(−2α) I, r = N[γ̈/‖γ̇‖² + α s], IVP γ̈ = −α‖γ̇‖² N s.
Score metric (docs/method.md §4): G = I + λ s sᵀ, geodesic ODE γ̈ = −λ (γ̇ᵀHγ̇) s/(1 + λ‖s‖²) with H v = ∇s·v; its
pregeodesic residual is r = N[γ̈ + λ(γ̇ᵀHγ̇) s/(1 + λ‖s‖²)]/‖γ̇‖², invariant under reparametrisation like the
density one (the Levi-Civita acceleration ∇_γ̇ γ̇ must be parallel to γ̇).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from geovid.errors import InputError
from geovid.geometry import ScoreFn
from geovid.geometry.paths import Sphere


@runtime_checkable
class Metric(Protocol):
    """What the solvers and the measures need from a Riemannian metric (see the module docstring)."""

    name: str
    needs_hvp: bool

    def force(self, x: torch.Tensor, unit_t: torch.Tensor, s: torch.Tensor, sphere: Sphere,
              score_fn: ScoreFn | None = None) -> torch.Tensor: ...
    def acceleration(self, x: torch.Tensor, v: torch.Tensor, s: torch.Tensor, sphere: Sphere,
                     score_fn: ScoreFn | None = None) -> torch.Tensor: ...
    def segment_log_weights(self, rel_log_density_mid: torch.Tensor) -> torch.Tensor: ...
    def energy(self, dx: torch.Tensor, rel_log_density_mid: torch.Tensor, s_mid: torch.Tensor) -> torch.Tensor: ...


def _normal(v: torch.Tensor, unit_t: torch.Tensor) -> torch.Tensor:
    """N v = v − (v·T) T for unit tangents T (row-wise)."""
    return v - (v * unit_t).sum(-1, keepdim=True) * unit_t


def hessian_vector(score_fn: ScoreFn, x: torch.Tensor, v: torch.Tensor, mode: str = "autograd") -> torch.Tensor:
    """H v = ∇s(x)·v, row-wise (docs/method.md §4): a Jacobian–vector product through autograd, or a central difference.

    Autograd uses the double-backward trick (``torch.autograd.functional.jvp``); if the score function is not
    differentiable (e.g. evaluated under ``no_grad``) it falls back to a central difference with 2 extra calls.
    """
    if mode == "autograd":
        try:
            with torch.enable_grad():
                _, jv = torch.autograd.functional.jvp(score_fn, x.detach(), v.detach())
            if jv is not None and torch.all(torch.isfinite(jv)):
                return jv.detach()
        except RuntimeError:
            pass
    h = 1e-4 * x.norm(dim=-1, keepdim=True).clamp_min(1.0) / v.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    return (score_fn(x + h * v) - score_fn(x - h * v)) / (2 * h)


class DensityMetric:
    """Conformal metric w = p^(−α) (docs/method.md §3). α sets the balance between density and straightness."""

    name = "density"
    needs_hvp = False

    def __init__(self, alpha: float = 1.0) -> None:
        if not alpha > 0:
            raise InputError(f"alpha must be positive, got {alpha}")
        self.alpha = float(alpha)

    @classmethod
    def from_options(cls, *, alpha: float, lam: float, hvp: str) -> DensityMetric:
        """The metric from :func:`make_metric`'s options: it takes α (λ and hvp belong to the score metric)."""
        return cls(alpha)

    def force(self, x: torch.Tensor, unit_t: torch.Tensor, s: torch.Tensor, sphere: Sphere,
              score_fn: ScoreFn | None = None) -> torch.Tensor:
        """α N P s (docs/method.md §3)."""
        return self.alpha * _normal(sphere.project_vectors(x, s), unit_t)

    def acceleration(self, x: torch.Tensor, v: torch.Tensor, s: torch.Tensor, sphere: Sphere,
                     score_fn: ScoreFn | None = None) -> torch.Tensor:
        """γ̈ = −α ‖γ̇‖² N s (constant-speed IVP form, docs/method.md §3)."""
        speed2 = (v * v).sum(-1, keepdim=True)
        unit = v / speed2.sqrt().clamp_min(1e-300)
        return -self.alpha * speed2 * _normal(sphere.project_vectors(x, s), unit)

    def segment_log_weights(self, rel_log_density_mid: torch.Tensor) -> torch.Tensor:
        """log w at segment midpoints relative to the start: −α ℓ."""
        return -self.alpha * rel_log_density_mid

    def energy(self, dx: torch.Tensor, rel_log_density_mid: torch.Tensor, s_mid: torch.Tensor) -> torch.Tensor:
        """log of E = (n/2) Σ w(m_i)² ‖Δx_i‖² relative to w(x₀)² (n = number of segments)."""
        n = dx.shape[0]
        terms = -2 * self.alpha * rel_log_density_mid + 2 * torch.log(dx.norm(dim=-1).clamp_min(1e-300))
        return torch.logsumexp(terms, 0) + torch.log(torch.tensor(n / 2.0, dtype=dx.dtype))


class ScoreMetric:
    """G = I + λ s sᵀ (docs/method.md §4): stretches distances along the score, normal to the data manifold."""

    name = "score"
    needs_hvp = True

    def __init__(self, lam: float = 1000.0, hvp: str = "autograd") -> None:
        if not lam > 0:
            raise InputError(f"lambda must be positive, got {lam}")
        if hvp not in ("autograd", "fd"):
            raise InputError(f"hvp must be 'autograd' or 'fd', got {hvp!r}")
        self.lam = float(lam)
        self.hvp = hvp

    @classmethod
    def from_options(cls, *, alpha: float, lam: float, hvp: str) -> ScoreMetric:
        """The metric from :func:`make_metric`'s options: it takes λ and hvp (α belongs to the density metric)."""
        return cls(lam, hvp)

    def _christoffel(self, x: torch.Tensor, v: torch.Tensor, s: torch.Tensor, score_fn: ScoreFn | None) -> torch.Tensor:
        if score_fn is None:
            raise InputError("the score metric needs the score function for Hessian-vector products")
        hv = hessian_vector(score_fn, x, v, self.hvp)
        vhv = (v * hv).sum(-1, keepdim=True)
        return self.lam * vhv * s / (1 + self.lam * (s * s).sum(-1, keepdim=True))

    def force(self, x: torch.Tensor, unit_t: torch.Tensor, s: torch.Tensor, sphere: Sphere,
              score_fn: ScoreFn | None = None) -> torch.Tensor:
        """N P [λ (TᵀHT) s/(1 + λ‖s‖²)] for the unit tangent T."""
        c = self._christoffel(x, unit_t, s, score_fn)
        return _normal(sphere.project_vectors(x, c), unit_t)

    def acceleration(self, x: torch.Tensor, v: torch.Tensor, s: torch.Tensor, sphere: Sphere,
                     score_fn: ScoreFn | None = None) -> torch.Tensor:
        """γ̈ = −λ (γ̇ᵀHγ̇) s/(1 + λ‖s‖²) (docs/method.md §4)."""
        return -sphere.project_vectors(x, self._christoffel(x, v, s, score_fn))

    def segment_log_weights(self, rel_log_density_mid: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(rel_log_density_mid)

    def energy(self, dx: torch.Tensor, rel_log_density_mid: torch.Tensor, s_mid: torch.Tensor) -> torch.Tensor:
        """log of E = (n/2) Σ (‖Δx‖² + λ (s(m)·Δx)²) (docs/method.md §4)."""
        n = dx.shape[0]
        e = (n / 2.0) * ((dx * dx).sum(-1) + self.lam * (s_mid * dx).sum(-1) ** 2).sum()
        return torch.log(e.clamp_min(1e-300))


METRICS: dict[str, type[DensityMetric] | type[ScoreMetric]] = {"density": DensityMetric, "score": ScoreMetric}


def make_metric(name: str, alpha: float = 1.0, lam: float = 1000.0, hvp: str = "autograd") -> Metric:
    """Build a metric of :data:`METRICS` by name: ``density`` (parameter α) or ``score`` (parameters λ, hvp)."""
    cls = METRICS.get(name)
    if cls is None:
        raise InputError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}")
    return cls.from_options(alpha=alpha, lam=lam, hvp=hvp)
