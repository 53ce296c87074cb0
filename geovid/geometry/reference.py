"""Grid shortest paths in 2-D: the exact reference of tests and benchmarks, and the global initial path of the
2-D solver (docs/method.md §5).

Dijkstra (``scipy.sparse.csgraph.dijkstra``) on a regular grid whose edges go to all offsets (dx, dy) with
max(|dx|, |dy|) ≤ K and gcd(dx, dy) = 1: K = 2 is a 16-neighbourhood, K = 3 a 32-neighbourhood, K = 5 keeps the
metrication error of the grid well under 0.1 %. An edge's cost is the metric's speed integrated along it
(Simpson's rule): p(x)^(−α) for the density metric (docs/method.md §3), √(1 + λ (s·u)²) for the score metric (docs/method.md §4,
u the edge's unit direction). The result is an upper bound of the true geodesic length up to the grid resolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: weight(points (m, 2), unit edge direction (2,)) → cost per unit length at the points (m,)
EdgeWeight = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class GridGeodesic:
    length: float
    path: np.ndarray  # (m, 2) grid points from start to end
    nodes: int = 0  # grid nodes
    evaluations: int = 0  # points where the weight was evaluated


def density_weight(log_density: Callable[[np.ndarray], np.ndarray], alpha: float) -> EdgeWeight:
    """Edge weight of the density metric: p^(−α) (docs/method.md §3)."""
    return lambda pts, _u: np.exp(-alpha * log_density(pts))


def score_metric_weight(score: Callable[[np.ndarray], np.ndarray], lam: float) -> EdgeWeight:
    """Edge weight of the score metric along a direction u: √(1 + λ (s·u)²) (docs/method.md §4)."""
    return lambda pts, u: np.sqrt(1.0 + lam * (score(pts) @ u) ** 2)


def grid_shortest_path(weight: EdgeWeight, start: tuple[float, float], end: tuple[float, float],
                       bounds: tuple[float, float, float, float], resolution: int = 301, stencil: int = 5,
                       samples: int = 5) -> GridGeodesic:
    """Shortest path of ∫ weight ‖dγ‖ between two points on a grid over ``bounds`` = (xmin, xmax, ymin, ymax).

    The grid is shifted so that ``start`` is a node; ``end`` is snapped to its nearest node (the snap distance is
    part of the error budget, so choose bounds and resolution with ``end`` on the lattice when comparing closely).
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    xmin, xmax, ymin, ymax = bounds
    h = max(xmax - xmin, ymax - ymin) / (resolution - 1)
    # Align the lattice on the start point.
    ox = start[0] - math.floor((start[0] - xmin) / h) * h
    oy = start[1] - math.floor((start[1] - ymin) / h) * h
    nx = math.floor((xmax - ox) / h) + 1
    ny = math.floor((ymax - oy) / h) + 1
    gx = ox + h * np.arange(nx)
    gy = oy + h * np.arange(ny)

    offsets = [(dx, dy) for dx in range(-stencil, stencil + 1) for dy in range(-stencil, stencil + 1)
               if (dx, dy) != (0, 0) and math.gcd(abs(dx), abs(dy)) == 1]
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    node = ii * ny + jj
    rows, cols, vals = [], [], []
    u = np.linspace(0.0, 1.0, samples)
    simpson = np.ones(samples)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    simpson /= 3 * (samples - 1)
    evaluations = 0
    for dx, dy in offsets:
        if (dx, dy) < (0, 0):
            continue  # undirected: add each edge once, symmetric below
        i0 = slice(max(0, -dx), nx - max(0, dx))
        j0 = slice(max(0, -dy), ny - max(0, dy))
        src = node[i0, j0].ravel()
        sx, sy = gx[ii[i0, j0].ravel()], gy[jj[i0, j0].ravel()]
        pts = np.stack([sx[:, None] + u[None] * dx * h, sy[:, None] + u[None] * dy * h], -1)
        unit = np.array([dx, dy], dtype=np.float64) / math.hypot(dx, dy)
        w = weight(pts.reshape(-1, 2), unit).reshape(pts.shape[:2])
        evaluations += w.size
        cost = (w * simpson).sum(1) * h * math.hypot(dx, dy)
        dst = src + dx * ny + dy
        rows += [src, dst]
        cols += [dst, src]
        vals += [cost, cost]
    graph = csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nx * ny,) * 2)
    s_idx = round((start[0] - ox) / h) * ny + round((start[1] - oy) / h)
    ei = min(max(round((end[0] - ox) / h), 0), nx - 1)
    ej = min(max(round((end[1] - oy) / h), 0), ny - 1)
    e_idx = ei * ny + ej
    dist, pred = dijkstra(graph, directed=False, indices=s_idx, return_predecessors=True)
    path = []
    k = e_idx
    while k >= 0 and k != s_idx:
        path.append((gx[k // ny], gy[k % ny]))
        k = pred[k]
    path.append((gx[s_idx // ny], gy[s_idx % ny]))
    return GridGeodesic(length=float(dist[e_idx]), path=np.array(path[::-1]), nodes=nx * ny,
                        evaluations=evaluations)


def dijkstra_geodesic(log_density: Callable[[np.ndarray], np.ndarray], start: tuple[float, float],
                      end: tuple[float, float], alpha: float, bounds: tuple[float, float, float, float],
                      resolution: int = 301, stencil: int = 5, samples: int = 5) -> GridGeodesic:
    """Shortest path of ∫ p^(−α) ‖dγ‖ between two points on a grid (see ``grid_shortest_path``)."""
    return grid_shortest_path(density_weight(log_density, alpha), start, end, bounds, resolution, stencil, samples)


def grid_resolution(bounds: tuple[float, float, float, float], feature: float, lo: int = 101, hi: int = 301) -> int:
    """Grid points per side so that the spacing is at most ``feature`` (e.g. the narrowest component's smallest
    standard deviation), clipped to [lo, hi]."""
    extent = max(bounds[1] - bounds[0], bounds[3] - bounds[2])
    return int(min(max(math.ceil(extent / feature) + 1, lo), hi))


def polyline_to_path(points: np.ndarray, start: tuple[float, float], end: tuple[float, float], n: int) -> np.ndarray:
    """A grid path as n points equally spaced in arc length, with the exact start and end (the grid's last node
    is replaced by ``end``)."""
    p = np.asarray(points, dtype=np.float64).copy()
    p[0], p[-1] = start, end
    keep = np.concatenate([[True], np.linalg.norm(np.diff(p, axis=0), axis=1) > 0])
    p = p[keep]
    if len(p) < 2:
        p = np.array([start, end], dtype=np.float64)
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    target = np.linspace(0.0, cum[-1], n)
    out = np.stack([np.interp(target, cum, p[:, 0]), np.interp(target, cum, p[:, 1])], 1)
    out[0], out[-1] = start, end
    return out


def refined_reference(log_density_t: Callable[[object], object], start: tuple[float, float],
                      end: tuple[float, float], alpha: float, bounds: tuple[float, float, float, float],
                      resolution: int = 401, stencil: int = 5, points: int = 129, gauss: int = 8,
                      maxiter: int = 5000) -> tuple[float, np.ndarray, float]:
    """An independent fine reference of the 2-D density geodesic: Dijkstra on a fine grid (default 401² with a
    5-neighbourhood stencil) for the global route, then L-BFGS (scipy) on the discretised length of a
    ``points``-point polyline (at most ``maxiter`` iterations; 300 reach ~1e-4 relative on the test problems), ∫ p^(−α) ‖dγ‖ by ``gauss``-point Gauss–Legendre per segment with autograd
    gradients of the exact log-density ``log_density_t`` (torch tensor (m, 2) → (m,)).

    Returns (refined length, refined polyline, grid length; the grid snaps ``end`` to a node, so its length is
    only indicative). It shares no code with the geovid solver.
    """
    import torch
    from scipy.optimize import minimize

    def logp_np(p: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return log_density_t(torch.from_numpy(p)).numpy()

    g = dijkstra_geodesic(logp_np, start, end, alpha, bounds, resolution=resolution, stencil=stencil)
    x = polyline_to_path(g.path, start, end, points)
    nodes, wts = np.polynomial.legendre.leggauss(gauss)
    u = torch.from_numpy((nodes + 1) / 2)
    w = torch.from_numpy(wts / 2)
    a, b = torch.tensor(start, dtype=torch.float64), torch.tensor(end, dtype=torch.float64)

    def length(inner: torch.Tensor) -> torch.Tensor:
        p = torch.cat([a[None], inner.reshape(-1, 2), b[None]])
        d = p[1:] - p[:-1]
        q = p[:-1, None, :] + u[None, :, None] * d[:, None, :]
        weight = torch.exp(-alpha * log_density_t(q.reshape(-1, 2))).reshape(q.shape[:2])
        return ((weight * w).sum(1) * d.norm(dim=1)).sum()

    def fun(v: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.from_numpy(v).requires_grad_(True)
        val = length(t)
        (grad,) = torch.autograd.grad(val, t)
        return float(val.detach()), grad.numpy()

    res = minimize(fun, x[1:-1].ravel(), jac=True, method="L-BFGS-B",
                   options={"maxiter": maxiter, "ftol": 1e-13, "gtol": 1e-10})
    inner = res.x.reshape(-1, 2)
    path = np.concatenate([[start], inner, [end]])
    with torch.no_grad():
        final = float(length(torch.from_numpy(res.x)))
    return final, path, g.length
