"""Quality of a world model on held-out scenes: the three numbers of docs/model.md.

1. **VAE reconstruction** -- PSNR of decode(encode(I)) against I (target ≥ 28 dB).
2. **Inversion round trip** -- encode, DDIM-invert to ν (METHOD §1, 50-step grid, guidance 1, the scene's caption
   as the condition), DDIM-denoise back, decode: PSNR against I (target ≥ 25 dB).
3. **Text-to-image** -- one sample per held-out caption (50 DDIM steps, CFG ``guidance``), judged by the world's
   plausibility checker: the share that is plausible *and* has the caption's colours (target ≥ 80 %).

All scenes come from seeds ≥ :data:`~geovid.model.data.HELDOUT_SEED_START`, which training never draws.
"""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np
import torch

from geovid.model.data import heldout_seeds, psnr, render_scenes, tensor_to_images
from geovid.progress import ProgressFn, null_progress

TARGETS = {"vae_psnr": 28.0, "roundtrip_psnr": 25.0, "sample_pass_rate": 0.8}


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


def evaluate(backbone: Any, n: int = 100, guidance: float = 5.0, steps: int = 50, noise_level: float = 0.6,
             seed: int = 0, n_samples: int | None = None, samples_out: list[tuple[str, np.ndarray]] | None = None,
             progress: ProgressFn = null_progress) -> dict[str, Any]:
    """Measure the three quality numbers on ``n`` held-out scenes (see the module docstring).

    Args:
        backbone: a loaded backbone whose resolution matches the world renderer's sizes.
        n: held-out scenes for the VAE and round-trip numbers.
        guidance: CFG scale of the text-to-image samples.
        steps: DDIM grid (50 as in METHOD §1).
        noise_level: ν of the round trip.
        seed: first noise seed of the samples (sample i uses ``seed + i``).
        n_samples: captions for the text-to-image test (default ``n``).
        samples_out: if given, receives ``(caption, image)`` for every sample (to look at them).
        progress: ``progress(phase, done, total, info)``.

    Returns:
        ``{"vae_psnr": {...}, "roundtrip_psnr": {...}, "sample_pass_rate": {...}, ...}``; each measurement has
        ``value`` (the headline number), ``target``, ``passed`` and details.
    """
    from geovid.world.checker import check

    res: dict[str, Any] = {"model": backbone.name, "n": n, "heldout_seed_start": heldout_seeds(1)[0]}
    t0 = time.monotonic()
    size = int(backbone.resolution)
    images, captions = render_scenes(heldout_seeds(n), size=size)

    # 1. VAE reconstruction.
    z0 = backbone.encode(images)
    rec = backbone.decode(z0)
    p_vae = psnr(rec, images)
    res["vae_psnr"] = {"value": float(p_vae.mean()), **_stats(p_vae)}
    rec_checks = [check(img) for img in tensor_to_images(rec)]
    res["vae_psnr"]["reconstructions_plausible"] = float(np.mean([c.plausible for c in rec_checks]))
    progress("vae", 1, 1, {"psnr": res["vae_psnr"]["value"]})

    # 2. Invert to ν and denoise back (per-scene caption as the condition, guidance 1 as the reference).
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
    res["roundtrip_psnr"] = {
        "value": float(p_rt.mean()), **_stats(p_rt), "noise_level": noise_level, "timestep": t,
        "guidance": 1.0, "condition": "caption", "psnr_vs_vae_reconstruction": float(p_rt_vae.mean()),
        "latent_relative_error": float(lat_err.mean()), "network_calls": backbone.network_calls - calls0,
    }

    # 3. Text-to-image samples judged by the checker (one batch per chunk, a caption per row).
    m = n if n_samples is None else n_samples
    caps = captions[:m] if m <= n else render_scenes(heldout_seeds(m), size=size)[1]
    passed, plausible, colours, matches, reasons = [], [], [], [], {}
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
            for why in r.reasons:
                key = _reason_kind(why)
                reasons[key] = reasons.get(key, 0) + 1
    res["sample_pass_rate"] = {
        "value": float(np.mean(passed)), "plausible": float(np.mean(plausible)),
        "colours_match": float(np.mean(colours)), "matches_caption": float(np.mean(matches)),
        "guidance": guidance, "steps": steps, "n": m, "failure_reasons": reasons,
    }
    for key, target in TARGETS.items():
        res[key]["target"] = target
        res[key]["passed"] = bool(res[key]["value"] >= target)
    res["seconds"] = round(time.monotonic() - t0, 1)
    return res
