"""An exact analytic backbone: Gaussian mixtures in any dimension (docs/method.md §1–§2).

The noised density at timestep t of a mixture Σ_k π_k N(μ_k, Σ_k) is again a mixture with means √ᾱ_t μ_k and
covariances ᾱ_t Σ_k + σ_t² I, so its score, its log-density and the optimal noise predictor
ε*(x, t) = −σ_t s_t(x) are known in closed form. This lets every solver and measure be checked against exact
references. Encode/decode are the identity; a "condition" is the name of one of several mixtures, so the
`contrast` estimator (docs/method.md §2) can be exercised with a conditional and a negative mixture.

t = −1 stands for the clean data (ᾱ = 1, σ = 0): there ε is undefined but the score and log-density are exact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from geovid.backbones.base import DDIMMixin, scaled_linear_alphas_cumprod
from geovid.errors import InputError


@dataclass
class GaussianMixture:
    """Weights (K,), means (K, D) and covariances (K, D, D) full or (K, D) diagonal, float64."""

    weights: torch.Tensor
    means: torch.Tensor
    covs: torch.Tensor

    def __post_init__(self) -> None:
        w = torch.as_tensor(self.weights, dtype=torch.float64).flatten()
        mu = torch.as_tensor(self.means, dtype=torch.float64)
        cov = torch.as_tensor(self.covs, dtype=torch.float64)
        if mu.ndim != 2:
            raise InputError(f"means must be a list of K points, got shape {tuple(mu.shape)}")
        k, d = mu.shape
        if w.numel() != k:
            raise InputError(f"{w.numel()} weights for {k} means")
        if not torch.all(torch.isfinite(w)) or torch.any(w <= 0):
            raise InputError("mixture weights must be positive numbers")
        if cov.shape == (k, d, d):
            if not torch.allclose(cov, cov.transpose(1, 2), atol=1e-10):
                raise InputError("covariance matrices must be symmetric")
            eig = torch.linalg.eigvalsh(cov)
            if not torch.all(torch.isfinite(eig)) or torch.any(eig <= 0):
                bad = int(torch.nonzero(~(eig > 0).all(dim=1))[0]) if (eig <= 0).any() else 0
                raise InputError(f"covariance {bad} is not positive definite")
        elif cov.shape == (k, d):
            if not torch.all(torch.isfinite(cov)) or torch.any(cov <= 0):
                raise InputError("diagonal covariances must be positive")
        else:
            raise InputError(f"covariances must have shape ({k}, {d}, {d}) or ({k}, {d}), got {tuple(cov.shape)}")
        self.weights, self.means, self.covs = w / w.sum(), mu, cov

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def diagonal(self) -> bool:
        return self.covs.ndim == 2

    @classmethod
    def from_json(cls, path: str | Path) -> GaussianMixture:
        """Load ``{"weights": [...], "means": [[...], ...], "covs": [[[...]...], ...]}``."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise InputError(f"density file not found: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read density file {path}: {exc}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "density") -> GaussianMixture:
        if not isinstance(data, Mapping) or not {"weights", "means", "covs"} <= set(data):
            raise InputError(f"{source}: expected keys 'weights', 'means', 'covs'")
        try:
            return cls(torch.tensor(data["weights"], dtype=torch.float64),
                       torch.tensor(data["means"], dtype=torch.float64),
                       torch.tensor(data["covs"], dtype=torch.float64))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise InputError(f"{source}: malformed numbers ({exc})") from None

    def to_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.tolist(), "means": self.means.tolist(), "covs": self.covs.tolist()}

    def noised(self, alpha_bar: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and covariances of the noised mixture (√ᾱ μ, ᾱ Σ + σ² I)."""
        a = torch.as_tensor(alpha_bar, dtype=torch.float64)
        means = a.sqrt() * self.means
        if self.diagonal:
            covs = a * self.covs + (1 - a)
        else:
            covs = a * self.covs + (1 - a) * torch.eye(self.dim, dtype=torch.float64)
        return means, covs

    def _component_terms(self, x: torch.Tensor, alpha_bar: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-component log N(x) (n, K) and precision-weighted residuals C⁻¹(x − m) (n, K, D)."""
        means, covs = self.noised(alpha_bar)
        diff = x[:, None, :] - means[None]  # (n, K, D)
        d = self.dim
        if self.diagonal:
            prec_diff = diff / covs[None]
            maha = (diff * prec_diff).sum(-1)
            logdet = torch.log(covs).sum(-1)
        else:
            chol = torch.linalg.cholesky(covs)  # (K, D, D)
            # Solve C y = diff for each component: cholesky_solve wants (K, D, n).
            rhs = diff.permute(1, 2, 0)
            y = torch.cholesky_solve(rhs, chol)  # (K, D, n)
            prec_diff = y.permute(2, 0, 1)
            maha = (diff * prec_diff).sum(-1)
            logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        logn = -0.5 * (d * math.log(2 * math.pi) + logdet[None] + maha)
        return logn, prec_diff

    def log_prob(self, x: torch.Tensor, alpha_bar: float = 1.0) -> torch.Tensor:
        """Exact log-density of the (noised) mixture at points x (n, D)."""
        logn, _ = self._component_terms(x.to(torch.float64), alpha_bar)
        return torch.logsumexp(logn + torch.log(self.weights)[None], dim=1)

    def score(self, x: torch.Tensor, alpha_bar: float = 1.0) -> torch.Tensor:
        """Exact score ∇ log p (n, D) of the (noised) mixture."""
        logn, prec_diff = self._component_terms(x.to(torch.float64), alpha_bar)
        resp = torch.softmax(logn + torch.log(self.weights)[None], dim=1)  # (n, K)
        return -(resp[..., None] * prec_diff).sum(1)


def _as_mixture(m: GaussianMixture | Mapping[str, Any]) -> GaussianMixture:
    return m if isinstance(m, GaussianMixture) else GaussianMixture.from_dict(m)


class GaussianMixtureBackbone(DDIMMixin):
    """A Backbone whose ε is the exact optimal denoiser of a Gaussian mixture (any dimension D).

    Args:
        mixture: the unconditional data distribution (condition ``""``).
        conditions: further named mixtures (e.g. ``{"red": ..., "negative": ...}``) selectable as conditions.
        latent_shape: shape of one point (default ``(D,)``).
    """

    def __init__(self, mixture: GaussianMixture | Mapping[str, Any],
                 conditions: Mapping[str, GaussianMixture | Mapping[str, Any]] | None = None,
                 latent_shape: Sequence[int] | None = None, num_train_timesteps: int = 1000) -> None:
        base = _as_mixture(mixture)
        self.mixtures: dict[str, GaussianMixture] = {"": base}
        for name, m in (conditions or {}).items():
            mm = _as_mixture(m)
            if mm.dim != base.dim:
                raise InputError(f"condition {name!r} has dimension {mm.dim}, expected {base.dim}")
            self.mixtures[name] = mm
        self.name = f"analytic-gmm-D{base.dim}-K{base.weights.numel()}"
        self.latent_shape = tuple(latent_shape) if latent_shape else (base.dim,)
        if math.prod(self.latent_shape) != base.dim:
            raise InputError(f"latent_shape {self.latent_shape} does not have {base.dim} elements")
        self.resolution = None
        self.num_train_timesteps = num_train_timesteps
        self.alphas_cumprod = scaled_linear_alphas_cumprod(num_train_timesteps)
        self.device = torch.device("cpu")
        self.dtype = torch.float64
        self.network_calls = 0
        self.network_batches = 0
        self.default_negative_prompt = "negative" if "negative" in self.mixtures else ""

    @property
    def dim(self) -> int:
        return self.mixtures[""].dim

    def mixture(self, cond: str | None) -> GaussianMixture:
        key = cond or ""
        if key not in self.mixtures:
            raise InputError(f"unknown condition {cond!r}; known: {sorted(self.mixtures)}")
        return self.mixtures[key]

    def embed_prompt(self, prompt: str | None) -> str:
        self.mixture(prompt)
        return prompt or ""

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return images.to(torch.float64).reshape(images.shape[0], *self.latent_shape)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return latents

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1).to(torch.float64)

    def score(self, x: torch.Tensor, t: int | torch.Tensor, cond: str | None = "") -> torch.Tensor:
        """Exact ∇ log p_t(x | cond); t may be −1 (clean data) or a per-sample tensor. Counts as network calls."""
        flat = self._flat(x)
        self.network_calls += flat.shape[0]
        self.network_batches += 1
        mix = self.mixture(cond)
        if isinstance(t, torch.Tensor) and t.ndim > 0:
            out = torch.empty_like(flat)
            for tv in torch.unique(t):
                idx = t == tv
                out[idx] = mix.score(flat[idx], self.alpha_bar(int(tv)))
        else:
            out = mix.score(flat, self.alpha_bar(int(t)))
        return out.reshape(x.shape)

    def log_prob(self, x: torch.Tensor, t: int, cond: str | None = "") -> torch.Tensor:
        """Exact log p_t(x | cond) (not counted as a network call: only tests and references use it)."""
        return self.mixture(cond).log_prob(self._flat(x), self.alpha_bar(int(t)))

    def eps(self, x: torch.Tensor, t: int | torch.Tensor, cond: str | None = "") -> torch.Tensor:
        """The optimal noise predictor ε*(x, t) = −σ_t s_t(x) (docs/method.md §2)."""
        s = self.score(x, t, cond)
        if isinstance(t, torch.Tensor) and t.ndim > 0:
            sig = torch.tensor([self.sigma(int(v)) for v in t], dtype=torch.float64)
            sig = sig.reshape(-1, *([1] * (x.ndim - 1)))
        else:
            sig = self.sigma(int(t))
        return -sig * s
