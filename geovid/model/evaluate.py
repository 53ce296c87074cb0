"""Quality of a world model on held-out scenes: the numbers of docs/model.md.

1. **VAE reconstruction** -- PSNR of decode(encode(I)) against I (target ≥ 28 dB).
2. **Inversion round trip** -- encode, DDIM-invert to ν (docs/method.md §1, 50-step grid, guidance 1, the scene's caption
   as the condition), DDIM-denoise back, decode: PSNR against I (target ≥ 25 dB).
3. **Text-to-image** -- one sample per held-out caption (50 DDIM steps, CFG ``guidance``), judged by the world's
   plausibility checker: the share that is plausible *and* has the caption's colours (target ≥ 80 %); also
   separately for one-, two- and three-object captions.
4. **Artefact awareness** (:func:`artefact_awareness`) -- the denoising loss (ELBO proxy) of held-out clean
   scenes and of degraded ones (:mod:`geovid.model.artefacts`) under the model's negative prompt and under the
   empty prompt: a model that knows what c_neg describes finds clean scenes less likely under it (higher loss)
   and degraded ones more likely (lower loss). Target: ≥ 90 % of images each.
5. **Path smoothness** (:func:`path_smoothness`) -- median cosine between consecutive steps of inverted world
   clips at ν (``linear`` and ``jitter`` motion), beside the same number for the VAE latents. Reported, no
   target: smoother inversions make clip paths more comparable with geodesics.

All scenes come from seeds ≥ :data:`~geovid.model.data.HELDOUT_SEED_START`, which training never draws.
"""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np
import torch

from geovid.backbones.base import Backbone
from geovid.model.data import heldout_seeds, psnr, render_scenes, tensor_to_images
from geovid.progress import ProgressFn, null_progress

TARGETS = {"vae_psnr": 30.0, "roundtrip_psnr": 30.0, "sample_pass_rate": 0.8, "artefact_clean": 0.9,
           "artefact_degraded": 0.9}


def _reason_kind(reason: str) -> str:
    """A checker reason without its numbers and colour names ("3 objects (…)" → "N objects")."""
    from geovid.world.scene import PALETTE

    text = re.sub(r"\d+%?", "N", reason.split("(")[0])
    text = re.sub(r"\b(" + "|".join(PALETTE) + r")\b,?", "", text)
    return " ".join(text.replace(" and ", " ").split())


def _stats(v: torch.Tensor | np.ndarray) -> dict[str, float]:
    a = np.asarray(v, dtype=np.float64)
    return {"mean": float(a.mean()), "median": float(np.median(a)), "min": float(a.min()),
            "p10": float(np.percentile(a, 10))}


#: Timesteps of the denoising-loss (ELBO proxy) measurements: ten, evenly over the schedule.
LOSS_TIMESTEPS: tuple[int, ...] = (50, 150, 250, 350, 450, 550, 650, 750, 850, 950)


@torch.no_grad()
def denoising_loss(backbone: Backbone, z0: torch.Tensor, cond: torch.Tensor,
                   timesteps: tuple[int, ...] = LOSS_TIMESTEPS, seed: int = 0) -> torch.Tensor:
    """Per-image ε-prediction MSE averaged over ``timesteps`` with fixed noises: an ELBO proxy.

    ``z0`` (N, C, h, w) scaled latents, ``cond`` 1 or N prompt embeddings. The noises depend only on ``seed``
    and the image index, so two conditions (or two models) are compared on exactly the same draws. Lower is
    more likely under the condition.
    """
    gen = torch.Generator().manual_seed(seed)
    acp = backbone.alphas_cumprod.float()
    out = torch.zeros(z0.shape[0])
    for t in timesteps:
        noise = torch.randn(z0.shape, generator=gen)
        a = float(acp[t])
        xt = (a ** 0.5) * z0.cpu().float() + ((1 - a) ** 0.5) * noise
        eps = backbone.eps(xt.to(backbone.device), t, cond).float().cpu()
        out += (eps - noise).pow(2).flatten(1).mean(1)
    return out / len(timesteps)


def evaluate(backbone: Backbone, n: int = 100, guidance: float = 5.0, steps: int = 50, noise_level: float = 0.6,
             seed: int = 0, n_samples: int | None = None, samples_out: list[tuple[str, np.ndarray]] | None = None,
             artefacts: bool = True, n_artefacts: int = 100, smoothness: bool = True,
             progress: ProgressFn = null_progress) -> dict[str, Any]:
    """Measure the three quality numbers on ``n`` held-out scenes (see the module docstring).

    Args:
        backbone: a loaded backbone whose resolution matches the world renderer's sizes.
        n: held-out scenes for the VAE and round-trip numbers.
        guidance: CFG scale of the text-to-image samples.
        steps: DDIM grid (50 as in docs/method.md §1).
        noise_level: ν of the round trip.
        seed: first noise seed of the samples (sample i uses ``seed + i``).
        n_samples: captions for the text-to-image test (default ``n``).
        samples_out: if given, receives ``(caption, image)`` for every sample (to look at them).
        artefacts: also measure artefact awareness on ``n_artefacts`` clean and as many degraded scenes.
        smoothness: also measure the path smoothness of inverted clips.
        progress: ``progress(phase, done, total, info)``.

    Returns:
        ``{"vae_psnr": {...}, "roundtrip_psnr": {...}, "sample_pass_rate": {...}, ...}``; each measurement has
        ``value`` (the headline number), ``target``, ``passed`` and details.
    """
    res: dict[str, Any] = {"model": backbone.name, "n": n, "heldout_seed_start": heldout_seeds(1)[0]}
    t0 = time.monotonic()
    size = int(backbone.resolution)
    images, captions = render_scenes(heldout_seeds(n), size=size)
    z0, rec, res["vae_psnr"] = _vae_reconstruction(backbone, images)
    progress("vae", 1, 1, {"psnr": res["vae_psnr"]["value"]})
    res["roundtrip_psnr"] = _roundtrip(backbone, images, captions, z0, rec, noise_level, steps, progress)
    m = n if n_samples is None else n_samples
    caps = captions[:m] if m <= n else render_scenes(heldout_seeds(m), size=size)[1]
    res["sample_pass_rate"] = _sample_pass_rate(backbone, caps, guidance, steps, seed, samples_out, progress)
    if artefacts:
        res.update(artefact_awareness(backbone, n=n_artefacts, progress=progress))
    if smoothness:
        res["path_smoothness"] = path_smoothness(backbone, noise_level=noise_level, steps=steps,
                                                 progress=progress)
    for key, target in TARGETS.items():
        if key not in res:
            continue
        res[key]["target"] = target
        res[key]["passed"] = bool(res[key]["value"] >= target)
    res["seconds"] = round(time.monotonic() - t0, 1)
    return res


def _vae_reconstruction(backbone: Backbone, images: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """1. The latents z₀ of ``images``, their reconstructions, and the PSNR of those (and how many look
    plausible)."""
    from geovid.world.checker import check

    z0 = backbone.encode(images)
    rec = backbone.decode(z0)
    p_vae = psnr(rec, images)
    out = {"value": float(p_vae.mean()), **_stats(p_vae)}
    out["reconstructions_plausible"] = float(np.mean([check(img).plausible for img in tensor_to_images(rec)]))
    return z0, rec, out


def _roundtrip(backbone: Backbone, images: torch.Tensor, captions: list[str], z0: torch.Tensor, rec: torch.Tensor,
               noise_level: float, steps: int, progress: ProgressFn) -> dict[str, Any]:
    """2. Invert to ν and denoise back (per-scene caption as the condition, guidance 1 as the reference)."""
    t = backbone.noise_level_to_timestep(noise_level, steps)
    cond = torch.cat([backbone.embed_prompt(c) for c in captions])
    calls0 = backbone.network_calls
    x = backbone.invert(z0, t, cond, guidance=1.0, num_inference_steps=steps,
                        progress=lambda i, k: progress("invert", i, k, {}))
    z1 = backbone.denoise(x, t, cond, guidance=1.0, num_inference_steps=steps,
                          progress=lambda i, k: progress("denoise", i, k, {}))
    back = backbone.decode(z1)
    p_rt = psnr(back, images)
    p_rt_vae = psnr(back, rec)
    lat_err = ((z1 - z0).flatten(1).norm(dim=1) / z0.flatten(1).norm(dim=1))
    return {
        "value": float(p_rt.mean()), **_stats(p_rt), "noise_level": noise_level, "timestep": t,
        "guidance": 1.0, "condition": "caption", "psnr_vs_vae_reconstruction": float(p_rt_vae.mean()),
        "latent_relative_error": float(lat_err.mean()), "network_calls": backbone.network_calls - calls0,
    }


def _sample_pass_rate(backbone: Backbone, caps: list[str], guidance: float, steps: int, seed: int,
                      samples_out: list[tuple[str, np.ndarray]] | None, progress: ProgressFn) -> dict[str, Any]:
    """3. Text-to-image samples judged by the checker (one batch per chunk, a caption per row)."""
    from geovid.world.checker import check
    from geovid.world.scene import parse_caption

    m = len(caps)
    passed, plausible, colours, matches, reasons, counts = [], [], [], [], {}, []
    uncond = backbone.embed_prompt("")
    t_top = int(backbone.timesteps(steps)[0])
    chunk = 50
    for s in range(0, m, chunk):
        part = caps[s:s + chunk]
        noise = torch.cat([torch.randn((1, *backbone.latent_shape), generator=torch.Generator().manual_seed(
            seed + s + j)) for j in range(len(part))]).to(backbone.device)
        c = torch.cat([backbone.embed_prompt(cap) for cap in part])
        z = backbone.denoise(noise, t_top, c, guidance=guidance, num_inference_steps=steps, uncond=uncond,
                             progress=lambda i, k, s=s, b=len(part): progress("samples", s + i * b // k, m, {}))
        imgs = tensor_to_images(backbone.decode(z))
        for img, cap in zip(imgs, part):
            if samples_out is not None:
                samples_out.append((cap, img))
            r = check(img, cap)
            plausible.append(r.plausible)
            colours.append(bool(r.colours_match))
            matches.append(bool(r.matches_caption))
            passed.append(r.plausible and bool(r.colours_match))
            counts.append(len(parse_caption(cap)))
            for why in r.reasons:
                key = _reason_kind(why)
                reasons[key] = reasons.get(key, 0) + 1
    return {
        "value": float(np.mean(passed)), "plausible": float(np.mean(plausible)),
        "colours_match": float(np.mean(colours)), "matches_caption": float(np.mean(matches)),
        "guidance": guidance, "steps": steps, "n": m, "failure_reasons": reasons,
        "by_objects": {str(k): {"n": int(sum(c == k for c in counts)),
                                "value": float(np.mean([p for p, c in zip(passed, counts) if c == k]))}
                       for k in sorted(set(counts))},
    }


def artefact_awareness(backbone: Backbone, n: int = 100, seed: int = 0,
                       progress: ProgressFn = null_progress) -> dict[str, Any]:
    """Does the model know what its negative prompt describes? (item 4 of the module docstring).

    ``n`` held-out clean scenes and ``n`` degraded ones (half cross-fades, the rest spread over the other
    kinds), each scored by :func:`denoising_loss` under the negative prompt and under ``""`` with the same
    noises. Returns ``artefact_clean`` (share of clean scenes with loss(neg) > loss(empty)) and
    ``artefact_degraded`` (share of degraded scenes with loss(neg) < loss(empty)), with per-kind shares.
    """
    from geovid.model.artefacts import KINDS, render_degraded
    from geovid.model.data import images_to_tensor

    size = int(backbone.resolution)
    clean, _ = render_scenes(heldout_seeds(n, start=HELDOUT_ARTEFACT_START), size=size)
    others = [k for k in KINDS if k != "crossfade"]
    kinds = ["crossfade" if i % 2 == 0 else others[(i // 2) % len(others)] for i in range(n)]
    degraded = np.stack([render_degraded(HELDOUT_ARTEFACT_START + n + i, size, kind=k)[0]
                         for i, k in enumerate(kinds)])
    neg = backbone.embed_prompt(getattr(backbone, "negative_prompt", "") or "")
    empty = backbone.embed_prompt("")
    out: dict[str, Any] = {}
    for name, images in (("clean", clean), ("degraded", images_to_tensor(degraded))):
        z0 = backbone.encode(images)
        l_neg = denoising_loss(backbone, z0, neg, seed=seed)
        l_empty = denoising_loss(backbone, z0, empty, seed=seed)
        wins = (l_neg > l_empty) if name == "clean" else (l_neg < l_empty)
        entry: dict[str, Any] = {
            "value": float(wins.float().mean()), "n": len(wins),
            "mean_loss_negative": float(l_neg.mean()), "mean_loss_empty": float(l_empty.mean()),
            "median_log_ratio": float(torch.log(l_neg / l_empty).median()),
        }
        if name == "degraded":
            entry["by_kind"] = {k: float(np.mean([w for w, kk in zip(wins.tolist(), kinds) if kk == k]))
                                for k in KINDS}
        out[f"artefact_{name}"] = entry
        progress("artefacts", 1 if name == "clean" else 2, 2, {})
    return out


#: First seed of the artefact-awareness scenes (held out, apart from the other evaluation scenes).
HELDOUT_ARTEFACT_START = 3_000_000


def _step_cosines(path: torch.Tensor) -> torch.Tensor:
    """Cosines between consecutive steps of a path (F, ...) → (F-2,)."""
    d = (path[1:] - path[:-1]).flatten(1)
    return torch.nn.functional.cosine_similarity(d[1:], d[:-1], dim=1)


def path_smoothness(backbone: Backbone, clips: int = 6, frames: int = 12, noise_level: float = 0.6, steps: int = 50,
                    progress: ProgressFn = null_progress) -> dict[str, Any]:
    """Median cosine between consecutive steps of world clips (item 5 of the module docstring).

    For ``clips`` ``linear`` clips and the same clips with ``jitter`` (held-out seeds), the frames are encoded
    (VAE latents) and inverted to ν with their caption as the condition (guidance 1), as the analysis does.
    """
    from geovid.model.data import images_to_tensor
    from geovid.world.clips import make_clip

    t = backbone.noise_level_to_timestep(noise_level, steps)
    res: dict[str, Any] = {"noise_level": noise_level, "clips": clips, "frames": frames}
    for motion in ("linear", "jitter"):
        lat, inv = [], []
        for c in range(clips):
            imgs, _, cap = make_clip(motion, frames=frames, seed=HELDOUT_ARTEFACT_START + 500 + c,
                                     size=int(backbone.resolution))
            z0 = backbone.encode(images_to_tensor(np.stack(imgs)))
            cond = backbone.embed_prompt(cap.split(";")[0])
            x = backbone.invert(z0, t, cond, guidance=1.0, num_inference_steps=steps)
            lat.append(float(_step_cosines(z0).median()))
            inv.append(float(_step_cosines(x).median()))
            progress(f"smoothness {motion}", c + 1, clips, {})
        res[motion] = {"inverted_median_cosine": float(np.median(inv)), "vae_median_cosine": float(np.median(lat)),
                       "inverted_per_clip": inv, "vae_per_clip": lat}
    return res
