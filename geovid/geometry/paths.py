"""Discrete paths: sphere constraint, slerp/lerp, tangents and curvature vectors (docs/method.md §1, §3).

A path is a tensor ``X`` of shape (n, D): n points, endpoints included, flattened latents. The sphere constraint
(docs/method.md §1) keeps every point at radius R and projects vectors with P_x = I − x̂x̂ᵀ.

Curvature is computed from the circle through three consecutive points (Menger curvature, as a vector): exact
for points on a circle whatever their spacing, and independent of the parametrisation — exactly the property
of N γ̈/‖γ̇‖² that the geodesic gradient r relies on (docs/method.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Sphere:
    """The sphere constraint of docs/method.md §1: radius R, or R = None for plain ℝᴰ."""

    radius: float | None

    @property
    def on(self) -> bool:
        return self.radius is not None

    def project_points(self, x: torch.Tensor) -> torch.Tensor:
        """Put points back on the sphere (identity when off)."""
        if self.radius is None:
            return x
        return self.radius * x / x.norm(dim=-1, keepdim=True).clamp_min(1e-30)

    def project_vectors(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """P_x v = v − (v·x̂) x̂ (identity when off)."""
        if self.radius is None:
            return v
        xh = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-30)
        return v - (v * xh).sum(-1, keepdim=True) * xh

    @staticmethod
    def for_points(points: torch.Tensor, on: bool = True) -> Sphere:
        """Sphere whose radius is the mean norm of the given points (docs/method.md §1)."""
        return Sphere(float(points.norm(dim=-1).mean()) if on else None)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between a and b (D,) at times t (m,) → (m, D); radius interpolated linearly."""
    t = t.to(a.dtype).reshape(-1, 1)
    na, nb = a.norm(), b.norm()
    ua, ub = a / na, b / nb
    cos = (ua * ub).sum().clamp(-1.0, 1.0)
    theta = torch.arccos(cos)
    if float(theta) < 1e-6:
        u = (1 - t) * ua + t * ub
    else:
        u = (torch.sin((1 - t) * theta) * ua + torch.sin(t * theta) * ub) / torch.sin(theta)
    u = u / u.norm(dim=-1, keepdim=True)
    return u * ((1 - t) * na + t * nb)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation (m, D)."""
    t = t.to(a.dtype).reshape(-1, 1)
    return (1 - t) * a + t * b


def initial_path(a: torch.Tensor, b: torch.Tensor, n: int, sphere: Sphere) -> torch.Tensor:
    """n points from a to b: slerp onto the sphere when the constraint is on, else lerp (docs/method.md §5)."""
    t = torch.linspace(0, 1, n, dtype=a.dtype)
    if sphere.on:
        return sphere.project_points(slerp(a, b, t))
    return lerp(a, b, t)


def segment_lengths(x: torch.Tensor) -> torch.Tensor:
    """‖x_{i+1} − x_i‖, shape (n−1,)."""
    return (x[1:] - x[:-1]).norm(dim=-1)


def curvature_vectors(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Curvature vectors κ and unit tangents T at the interior points of a path x (n, D).

    κ_i points from x_i to the centre of the circle through x_{i−1}, x_i, x_{i+1}, with length 1/radius
    (0 on straight stretches). T_i is that circle's unit tangent at x_i. Shapes (n−2, D).
    """
    a = x[:-2] - x[1:-1]
    b = x[2:] - x[1:-1]
    aa = (a * a).sum(-1, keepdim=True)
    bb = (b * b).sum(-1, keepdim=True)
    ab = (a * b).sum(-1, keepdim=True)
    det = aa * bb - ab * ab  # Gram determinant, 0 for collinear points
    # The circumcentre offset is c = u / det with u below; κ = c/‖c‖² = u·det/‖u‖² stays finite as det → 0.
    u = 0.5 * (bb * (aa - ab) * a + aa * (bb - ab) * b)
    uu = (u * u).sum(-1, keepdim=True)
    scale = (aa * bb).clamp_min(1e-300)
    straight = det <= 1e-14 * scale
    kappa = torch.where(straight, torch.zeros_like(u), u * det / uu.clamp_min(1e-300))
    # Tangent: the chord direction b − a with its component along κ removed (exact for circles).
    chord = b - a
    kn = kappa.norm(dim=-1, keepdim=True)
    khat = torch.where(kn > 0, kappa / kn.clamp_min(1e-300), torch.zeros_like(kappa))
    tang = chord - (chord * khat).sum(-1, keepdim=True) * khat
    tang = tang / tang.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    return kappa, tang


def end_tangent(x: torch.Tensor, at_start: bool = True, order: int = 4) -> torch.Tensor:
    """Unit tangent at the first (or last) point of a path.

    Differentiates the polynomial through the first ``order`` points (chord-length parameter) at the end: a
    one-sided Lagrange derivative, accurate to O(h^(order−1)).
    """
    p = x if at_start else x.flip(0)
    m = min(order, p.shape[0])
    p = p[:m]
    s = torch.cat([p.new_zeros(1), torch.cumsum((p[1:] - p[:-1]).norm(dim=-1), 0)])
    w = torch.empty(m, dtype=p.dtype)
    w[0] = sum(1.0 / (s[0] - s[j]) for j in range(1, m))
    for k in range(1, m):
        num = torch.prod(torch.stack([s[0] - s[j] for j in range(1, m) if j != k])) if m > 2 else p.new_ones(())
        den = torch.prod(torch.stack([s[k] - s[j] for j in range(m) if j != k]))
        w[k] = num / den
    t = (w[:, None] * p).sum(0)
    t = t / t.norm()
    return t if at_start else -t


def arclength_resample(x: torch.Tensor, n: int, sphere: Sphere) -> torch.Tensor:
    """Resample a polyline at n points equally spaced in (chordal) arc length, endpoints kept."""
    seg = segment_lengths(x)
    cum = torch.cat([seg.new_zeros(1), torch.cumsum(seg, 0)])
    target = torch.linspace(0, float(cum[-1]), n, dtype=x.dtype)
    idx = torch.searchsorted(cum, target, right=True).clamp(1, len(x) - 1) - 1
    w = ((target - cum[idx]) / seg[idx].clamp_min(1e-300)).clamp(0, 1)[:, None]
    out = (1 - w) * x[idx] + w * x[idx + 1]
    out[0], out[-1] = x[0], x[-1]
    return sphere.project_points(out)


def refine(x: torch.Tensor, sphere: Sphere) -> torch.Tensor:
    """Insert the midpoint of every segment (bisection: n → 2n − 1 points)."""
    mid = 0.5 * (x[1:] + x[:-1])
    out = torch.empty(2 * len(x) - 1, x.shape[1], dtype=x.dtype)
    out[0::2], out[1::2] = x, mid
    out = sphere.project_points(out)
    out[0], out[-1] = x[0], x[-1]
    return out
