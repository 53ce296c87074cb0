"""What the image-sequence jobs (interpolation, extrapolation) share: loading the model and the input images, the
endpoints' prompt-embedding inversion and the condition field c(x) along a path (docs/method.md §1.4, §2.2).

Opening, resuming and running a job, its phases' saved state and the call count live in :mod:`geovid.runs.jobs`
and :mod:`geovid.runs.state` (the one runner of phased jobs).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from geovid.errors import InputError
from geovid.progress import ProgressFn

if TYPE_CHECKING:
    from geovid.backbones.base import Backbone


def step_progress(progress: ProgressFn, phase: str, **info: Any) -> Any:
    """Adapter to the ``progress(done, total)`` callbacks of the backbone's DDIM loops."""
    return lambda done, total: progress(phase, done, total, dict(info))


def check_input_file(path: str | os.PathLike[str], what: str) -> Path:
    """Fail early (before a run folder exists) when an input file is missing."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{what} {p}: no such file")
    return p


def load_model(model: str | None, device: str | None, dtype: str) -> Backbone:
    """The backbone (diffusers SD folder, hub id in the local cache, or the bundled model)."""
    from geovid.backbones.loader import load_backbone

    return load_backbone(model, device=device, dtype=dtype)


def fit_image(image: np.ndarray, resolution: int | None, policy: str) -> np.ndarray:
    """An RGB uint8 image brought to the model's resolution (policy: docs/interpolation.md)."""
    from geovid.media.images import fit_to_resolution

    return image if resolution is None else fit_to_resolution(image, resolution, policy=policy)  # type: ignore[arg-type]


def load_fitted_image(path: str | os.PathLike[str], resolution: int | None, policy: str) -> np.ndarray:
    """Any common image file → RGB uint8 at the model's resolution."""
    from geovid.media.images import load_image

    return fit_image(load_image(path), resolution, policy)


def blend_conditions(cond_a: torch.Tensor, cond_b: torch.Tensor, t: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Prompt embeddings interpolated linearly along a path: rows (1 − tᵢ) c_A + tᵢ c_B, shape (n, L, H)."""
    tt = torch.as_tensor(np.asarray(t, dtype=np.float32)).to(cond_a.device, torch.float32)[:, None, None]
    return ((1 - tt) * cond_a.float() + tt * cond_b.float()).to(cond_a.dtype)


# ---------------------------------------------------------------------------------------------------------------
# Per-endpoint conditioning (docs/method.md §1, §2): prompt embeddings inverted from the two endpoints, blended
# along the path by position, for the score and for the decoding (docs/interpolation.md, "Conditioning").

#: Default optimisation steps of the joint endpoint prompt-embedding inversion (docs/interpolation.md).
DEFAULT_INVERT_STEPS = 20
#: Its AdamW learning rate (the reference's 5·10⁻³ over 500 steps; see docs/interpolation.md for the choice).
DEFAULT_INVERT_LR = 2e-2
#: Latents per endpoint in each optimisation step (the reference's batch).
DEFAULT_INVERT_BATCH = 2


def invert_endpoint_embeddings(backbone: Backbone, z0: torch.Tensor, prompt: str = "", steps: int = DEFAULT_INVERT_STEPS,
                               lr: float = DEFAULT_INVERT_LR, batch: int = DEFAULT_INVERT_BATCH, seed: int = 0,
                               use_cache: bool = True, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """One prompt embedding per clean latent, optimised jointly (text inversion as the reference does it for its
    endpoint images, docs/method.md §1.4, §2.2; :meth:`DiffusersBackbone.invert_prompt_embedding` for one embedding).

    Every step draws ``batch`` noises ε and timesteps τ (uniform over the training range) per latent and
    minimises the sum over latents of mean ‖ε_θ(√ᾱ_τ z₀ᵢ + σ_τ ε, τ, cᵢ) − ε‖² — the latents' problems are
    independent, but they share the network calls of a step (the "batched endpoints" of issue #13). Starts from
    ``embed_prompt(prompt)`` for every latent. Cached on disk (``cache_dir()/prompt-inversion``) by the sha256
    of the latents' bytes and every parameter.

    Returns:
        Embeddings (N, L, H) in the backbone dtype, detached.
    """
    import hashlib

    from geovid.runs.state import read_tensors, write_tensors
    from geovid.tasks.latents import cache_root

    if int(steps) < 0:
        raise InputError(f"--invert-steps must be at least 0, got {steps}")
    z = z0.detach().to("cpu", torch.float32).contiguous()
    # Identical latents (the same image twice) get one embedding: the inversion is a function of the image.
    keys = [z[i].numpy().tobytes() for i in range(z.shape[0])]
    uniq = list(dict.fromkeys(keys))
    if len(uniq) < len(keys):
        first = [keys.index(k) for k in uniq]
        embs = invert_endpoint_embeddings(backbone, z[first], prompt, steps=steps, lr=lr, batch=batch, seed=seed,
                                          use_cache=use_cache, progress=progress)
        return embs[[uniq.index(k) for k in keys]]
    n = int(z.shape[0])
    start = backbone.embed_prompt(prompt).detach().float()
    if int(steps) == 0:
        return start.repeat(n, 1, 1).to(backbone.dtype)
    h = hashlib.sha256()
    h.update(z.numpy().tobytes())
    h.update(f"{tuple(z.shape)}|{prompt or ''}|{getattr(backbone, 'name', '')}|joint|steps={steps}|lr={lr}|"
             f"batch={batch}|seed={seed}".encode())
    path = cache_root() / "prompt-inversion" / f"{h.hexdigest()}.safetensors"
    use_cache = use_cache and os.environ.get("GEOVID_NO_CACHE") != "1"
    if use_cache and path.is_file():
        try:
            return read_tensors(path)[0]["embeddings"].to(backbone.device, backbone.dtype)
        except Exception:  # a damaged cache entry is recomputed
            pass
    emb = start.repeat(n, 1, 1).clone().requires_grad_(True)
    opt = torch.optim.AdamW([emb], lr=float(lr))
    gen = torch.Generator().manual_seed(int(seed))
    acp = backbone.alphas_cumprod.float()
    rows = torch.arange(n).repeat_interleave(int(batch))
    for i in range(int(steps)):
        noise = torch.randn((rows.shape[0], *z.shape[1:]), generator=gen)
        tt = torch.randint(0, backbone.num_train_timesteps, (rows.shape[0],), generator=gen)
        a = acp[tt].view(-1, 1, 1, 1)
        xt = (a.sqrt() * z[rows] + (1 - a).sqrt() * noise).to(backbone.device)
        with torch.enable_grad():
            pred = backbone.eps(xt, tt, emb[rows].to(backbone.dtype))
            # Sum over latents of each one's mean loss: the gradient of every embedding is that of its own problem.
            loss = (pred - noise.to(pred.device)).pow(2).mean(dim=(1, 2, 3)).view(n, int(batch)).mean(1).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
        opt.step()
        if progress:
            progress(i + 1, int(steps))
    result = emb.detach().to(backbone.dtype)
    if use_cache:
        with contextlib.suppress(OSError):
            write_tensors(path, {"embeddings": result.float()})
    return result


def invert_with_conditions(backbone: Backbone, z0: torch.Tensor, conds: torch.Tensor, nu: float, steps: int = 50,
                           progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """DDIM inversion of clean latents z₀ (N, C, h, w) to level ν (docs/method.md §1), each with its own prompt
    embedding (``conds`` (N, L, H)). Returns flat float64 points (N, D). Not cached (the embeddings are)."""
    t = backbone.noise_level_to_timestep(nu, steps)
    with torch.no_grad():
        xt = backbone.invert(z0, t, conds, guidance=1.0, num_inference_steps=steps, progress=progress)
    return xt.reshape(xt.shape[0], -1).to(torch.float64).cpu()


class ConditionField:
    """The condition c(x) of a point (docs/interpolation.md, "Conditioning"): the endpoint embeddings c_A, c_B
    blended linearly by the position of x along the chord A→B, τ(x) = clamp(⟨x − A, B − A⟩ / ‖B − A‖², 0, 1).

    A function of the point alone, so the score s(x) = ∇ log p(x | c(x)) is one field for every caller (the BVP
    solver, α's rule, the measurements, the baselines and the extrapolation beyond B, where c = c_B), and each
    endpoint is scored and decoded with the embedding it was inverted with.
    """

    def __init__(self, cond_a: torch.Tensor, cond_b: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
        self.cond_a = cond_a
        self.cond_b = cond_b
        self.a = a.detach().to(torch.float64).reshape(-1)
        self.ab = b.detach().to(torch.float64).reshape(-1) - self.a
        self.ab2 = float(self.ab.pow(2).sum())
        self.constant = cond_a is cond_b or bool(torch.equal(cond_a, cond_b)) or self.ab2 == 0.0

    def position(self, x: torch.Tensor) -> torch.Tensor:
        """τ(x) in [0, 1] per row of flat points x (n, D)."""
        if self.ab2 == 0.0:
            return torch.zeros(x.shape[0], dtype=torch.float64)
        return (((x.detach().to(torch.float64) - self.a) @ self.ab) / self.ab2).clamp(0.0, 1.0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings (n, L, H) for flat points x (n, D); (1, L, H) when c_A = c_B."""
        if self.constant:
            return self.cond_a
        return blend_conditions(self.cond_a, self.cond_b, self.position(x).numpy())


class _FieldConditioned:
    """Mixin: the estimator's condition is ``field(x)`` per row instead of one embedding (docs/method.md §2)."""

    field: ConditionField

    def _score(self, x: torch.Tensor, offset: int) -> torch.Tensor:
        c = self.field(x)
        k = int(getattr(self, "draws", 1))
        if c.shape[0] > 1 and k > 1:
            c = c.repeat(k, 1, 1)  # the contrast estimator stacks its K draws as [draw 0 rows, draw 1 rows, …]
        saved = self.cond  # type: ignore[has-type]
        self.cond = c
        try:
            return super()._score(x, offset)  # type: ignore[misc]
        finally:
            self.cond = saved


def field_estimator(name: str, backbone: Backbone, t: int, field: ConditionField, seed: int = 0, draws: int = 1,
                    negative_prompt: str | None = None) -> Any:
    """The ``eps`` or ``contrast`` estimator (docs/method.md §2) conditioned on c(x) = ``field(x)``; contrast
    with the model's negative prompt (``default_negative_prompt``) and ``draws`` (τ, ε₀) draws per point."""
    from geovid.geometry.estimators import ContrastEstimator, EpsEstimator

    if name == "contrast":
        neg = negative_prompt if negative_prompt is not None else getattr(backbone, "default_negative_prompt", "")
        cls: type = type("FieldContrastEstimator", (_FieldConditioned, ContrastEstimator), {})
        est = cls(backbone, t, field.cond_a, seed=seed, neg_cond=backbone.embed_prompt(neg), draws=int(draws))
    elif name == "eps":
        cls = type("FieldEpsEstimator", (_FieldConditioned, EpsEstimator), {})
        est = cls(backbone, t, field.cond_a, seed=seed)
    else:
        raise InputError(f"unknown estimator {name!r}; choose from eps, contrast")
    est.field = field
    return est
