"""``geovid sample``, ``geovid model info|evaluate`` and ``geovid train``: the model commands."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from geovid.cli.common import (
    DeviceOpt,
    ModelArgs,
    ModelOpt,
    QuietOpt,
    RichProgress,
    SeedOpt,
    model_options,
    user_errors,
)

model_app = typer.Typer(help="Inspect and evaluate diffusion models (the bundled tiny SD, SD2, any SD folder).",
                        no_args_is_help=True)



def _at_least_one(**counts: int) -> None:
    """One-line error for a count option below 1 (before the model is loaded)."""
    from geovid.errors import InputError

    for name, value in counts.items():
        if value < 1:
            raise InputError(f"--{name} must be at least 1, got {value}")

@model_options
def sample(
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="Text prompt, e.g. \"a red sphere left of a "
                                        "blue cube\" (the bundled model knows the world's caption words).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNGs (created).")],
    n: Annotated[int, typer.Option("--n", help="Number of images.")] = 4,
    steps: Annotated[int, typer.Option("--steps", help="DDIM steps.")] = 50,
    guidance: Annotated[float, typer.Option("--guidance", "-g", help="Classifier-free guidance scale.")] = 5.0,
    negative: Annotated[str | None, typer.Option("--negative", help="Negative prompt (default: empty, the "
                                                 "unconditional branch).")] = None,
    upscale: Annotated[int, typer.Option("--upscale", help="Also write copies enlarged this many times "
                                         "(nearest neighbour; 1 = none).")] = 1,
    opts: ModelArgs = ModelArgs(),
) -> None:
    """Text-to-image samples (DDIM, classifier-free guidance); prints the paths of the written PNGs.

    Example: geovid sample --prompt "a large red sphere left of a small blue cube" --n 4 --out samples/
    """
    with user_errors():
        from geovid.model.sampling import sample_images, save_images

        _at_least_one(n=n, steps=steps, upscale=upscale)
        bb = opts.load()
        with RichProgress(opts.quiet) as prog:
            images = sample_images(bb, prompt, n=n, steps=steps, guidance=guidance, seed=opts.seed,
                                   negative_prompt=negative,
                                   progress=lambda i, total: prog("sample", i, total, {}))
        for path in save_images(images, out, stem="sample", upscale=upscale):
            typer.echo(str(path))


@model_app.command("info")
def model_info(
    model: ModelOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (keys: path, resolution, latent_shape, "
                                          "parameters, scheduler, ...).")] = False,
) -> None:
    """Where a model lives, its resolution, latent shape, parameter counts and scheduler."""
    with user_errors():
        from geovid.backbones.loader import model_info as info_of

        info = info_of(model)
        if as_json:
            typer.echo(json.dumps(info, indent=2))
            return
        p = info["parameters"]
        typer.echo(f"model        {info['name']}")
        typer.echo(f"path         {info['path']}")
        typer.echo(f"resolution   {info['resolution']} px")
        typer.echo(f"latents      {'×'.join(map(str, info['latent_shape']))} (D = {info['latent_dim']})")
        typer.echo("parameters   " + ", ".join(f"{k} {v:,}" for k, v in p.items()))
        typer.echo(f"size         {info['size_bytes'] / 1e6:.1f} MB")
        s = info["scheduler"]
        used = "" if s["class"] == s["used"] else f", run as {s['used']}"
        typer.echo(f"scheduler    {s['class']}{used} ({s['beta_schedule']} β {s['beta_start']}–{s['beta_end']}, "
                   f"{s['num_train_timesteps']} steps, offset {s['steps_offset']}, {s['prediction_type']}-prediction)")


@model_app.command("evaluate")
@model_options
def model_evaluate(
    out: Annotated[Path, typer.Option("--out", help="JSON file for the numbers.")] = Path("model-eval.json"),
    n: Annotated[int, typer.Option("--n", help="Held-out scenes per measurement.")] = 100,
    guidance: Annotated[float, typer.Option("--guidance", "-g", help="CFG scale of the text-to-image test.")] = 5.0,
    steps: Annotated[int, typer.Option("--steps", help="DDIM steps (50 as in docs/method.md §1).")] = 50,
    noise_level: Annotated[float, typer.Option("--noise-level", help="ν of the inversion round trip.")] = 0.6,
    opts: ModelArgs = ModelArgs(),
) -> None:
    """Quality on held-out world scenes (docs/model.md): VAE PSNR, invert→denoise PSNR at ν, sample plausibility
    and caption colours (by object count), artefact awareness of the negative prompt, path smoothness of
    inverted clips."""
    with user_errors():
        from geovid.model.evaluate import evaluate
        from geovid.tasks.sequence import check_noise_level

        _at_least_one(n=n, steps=steps)
        check_noise_level(noise_level)
        bb = opts.load()
        with RichProgress(opts.quiet) as prog:
            res = evaluate(bb, n=n, guidance=guidance, steps=steps, noise_level=noise_level, seed=opts.seed,
                           progress=prog)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2))
        for key in ("vae_psnr", "roundtrip_psnr", "sample_pass_rate", "artefact_clean", "artefact_degraded"):
            if key in res:
                typer.echo(f"{key:18s} {res[key]['value']:.4g}   (target {res[key]['target']})")
        for k, v in res["sample_pass_rate"].get("by_objects", {}).items():
            typer.echo(f"  samples with {k} object(s): {v['value']:.3g} of {v['n']}")
        for motion, v in res.get("path_smoothness", {}).items():
            if isinstance(v, dict):
                typer.echo(f"path smoothness {motion:7s} inverted {v['inverted_median_cosine']:.3f}   "
                           f"VAE latents {v['vae_median_cosine']:.3f}")
        typer.echo(str(out))


TrainCropOpt = Annotated[int | None, typer.Option("--crop", help="VAE: train on random N×N crops for the first "
    "75 % of the budget (0: full images; default: half the "
    "resolution, or 0 with --resume).")]
TrainScenesOpt = Annotated[int, typer.Option("--scenes", help="cache: number of training scenes (seeds 0…N-1).")
    ]
TrainArtefactsOpt = Annotated[float, typer.Option("--artefacts", help="cache: share of degraded scenes with "
    "artefact captions (the negative prompt's vocabulary).")]
TrainRefreshOpt = Annotated[str | None, typer.Option("--refresh", help="cache: re-encode only the finished rows of "
    "these artefact kinds (comma-separated) after a change to "
    "them.")]


def train(
    stage: Annotated[str, typer.Argument(help="vae, cache (render + encode the UNet's latent training set "
                                         "once), unet, or all (vae then unet).")],
    out: Annotated[Path, typer.Option("--out", help="Model folder (SD format); `unet` needs `out/vae`.")],
    steps: Annotated[int | None, typer.Option("--steps", help="Optimiser steps per stage (upper bound).")] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Scenes per step (default 16 VAE, 32 UNet).")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Peak learning rate (default 1e-3 VAE, 5e-4 "
                                             "UNet).")] = None,
    minutes: Annotated[float | None, typer.Option("--minutes", help="Wall-clock budget per stage; the LR "
                                                  "schedule follows it.")] = None,
    size: Annotated[str, typer.Option("--size", help="bundled (the shipped architecture) or tiny (a "
                                      "seconds-sized smoke test).")] = "bundled",
    log_every: Annotated[int, typer.Option("--log-every", help="Print a progress line every N steps "
                                           "(when not on a terminal).")] = 50,
    crop: TrainCropOpt = None,
    object_weight: Annotated[float, typer.Option("--object-weight", help="VAE: extra pixel-loss weight on "
                                                 "objects.")] = 4.0,
    chroma_weight: Annotated[float, typer.Option("--chroma-weight", help="VAE: weight of the colour-deviation "
                                                 "loss that keeps the ground grey.")] = 3.0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the weights already in --out "
                                         "(a new warm-up + cosine cycle).")] = False,
    threads: Annotated[int, typer.Option("--threads", help="torch CPU threads (1 is fastest on a busy "
                                         "two-core machine).")] = 1,
    checkpoint_minutes: Annotated[float, typer.Option("--checkpoint-minutes", help="Save the weights this "
                                                      "often during a stage.")] = 5.0,
    workers: Annotated[int, typer.Option("--workers", help="Processes rendering scenes in the background "
                                         "(0: none; use several when training on a GPU).")] = 0,
    cache: Annotated[Path | None, typer.Option("--cache", help="Latent cache folder: `cache` writes it, "
                                               "`unet` trains from it (no rendering or VAE in the loop).")] = None,
    scenes: TrainScenesOpt = 300_000,
    artefacts: TrainArtefactsOpt = 0.15,
    refresh: TrainRefreshOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
) -> None:
    """Train the tiny Stable Diffusion on world scenes (docs/model.md).

    Examples (the bundled model):

      geovid train vae   --out tiny-sd --minutes 25
      geovid train cache --out tiny-sd --cache latents --scenes 300000 --workers 2   (resumable)
      geovid train unet  --out tiny-sd --cache latents --minutes 90 --batch 64 --threads 2
    """
    with user_errors():
        from geovid.backbones.loader import resolve_device
        from geovid.errors import InputError
        from geovid.model.architecture import BUNDLED, TINY
        from geovid.model.train import TrainConfig, train_unet, train_vae

        if stage not in ("vae", "cache", "unet", "all"):
            raise InputError(f"stage must be vae, cache, unet or all, got {stage!r}")
        if stage == "cache":
            _latent_cache(out, cache, refresh, scenes, artefacts, seed, workers, quiet)
            return
        if size not in ("bundled", "tiny"):
            raise InputError(f"--size must be bundled or tiny, got {size!r}")
        spec = BUNDLED if size == "bundled" else TINY
        dev = resolve_device(None if device == "auto" else device)

        base = TrainConfig(steps=steps if steps is not None else 100_000, seed=seed, minutes=minutes,
                           threads=threads, resume=resume, device=dev, workers=workers,
                           checkpoint_minutes=checkpoint_minutes, warmup=min(100, max(1, (steps or 1000) // 10)))
        if steps is None and minutes is None:
            raise InputError("give a budget: --steps N and/or --minutes M")
        start = time.monotonic()
        summaries: list[dict[str, Any]] = []
        with _train_progress(quiet, log_every) as prog:
            if stage in ("vae", "all"):
                vae_crop = crop if crop is not None else (0 if resume else None)
                summaries.append(train_vae(out, replace(base, batch=batch or 16, lr=lr or 1e-3), spec, crop=vae_crop,
                                           object_weight=object_weight, chroma_weight=chroma_weight, progress=prog))
            if stage in ("unet", "all"):
                summaries.append(train_unet(out, replace(base, batch=batch or 32, lr=lr or 5e-4), spec, cache=cache,
                                            progress=prog))
        _report_training(out, summaries, start)


def _latent_cache(out: Path, cache: Path | None, refresh: str | None, scenes: int, artefacts: float, seed: int,
                  workers: int, quiet: bool) -> None:
    """``geovid train cache``: build (or resume) the UNet's latent training set, or re-encode some kinds."""
    from geovid.errors import InputError
    from geovid.model.cache import build_latent_cache

    if cache is None:
        raise InputError("give the cache folder: --cache DIR")
    if refresh:
        from geovid.model.cache import refresh_latent_cache

        with _train_progress(quiet, 1) as prog:
            counts = refresh_latent_cache(out, cache, [k.strip() for k in refresh.split(",") if k.strip()],
                                          workers=workers, progress=prog)
        typer.echo(f"latent cache {cache}: re-encoded {counts}")
        return
    with _train_progress(quiet, 1) as prog:
        man = build_latent_cache(out, cache, n=scenes, artefact_fraction=artefacts, seed=seed,
                                 workers=max(1, workers), progress=prog)
    typer.echo(f"latent cache {cache}: {man['n']} scenes ({man['kinds']}) in {man['seconds']:.0f} s")


def _report_training(out: Path, summaries: list[dict[str, Any]], start: float) -> None:
    """Write each stage's ``train-<stage>.json`` into the model folder and print one line per stage."""
    for s in summaries:
        (out / f"train-{s['stage']}.json").write_text(json.dumps(s, indent=2))
        typer.echo(f"{s['stage']}: {s['steps']} steps in {s['seconds']:.0f} s, final loss {s['loss']:.4g}")
    typer.echo(f"total time {time.monotonic() - start:.0f} s; model folder {out}")


class _train_progress:
    """Rich bars on a terminal; plain progress lines (e.g. into a log file) otherwise."""

    def __init__(self, quiet: bool, every: int) -> None:
        self.quiet, self.every = quiet, max(1, every)
        self.rich = RichProgress(quiet) if sys.stderr.isatty() else None

    def __enter__(self) -> Any:
        if self.rich is not None:
            return self.rich.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.rich is not None:
            self.rich.__exit__(*exc)

    def __call__(self, phase: str, done: int, total: int | None, info: dict[str, Any]) -> None:
        if self.quiet or (done % self.every and done != total):
            return
        text = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items())
        typer.echo(f"{phase} step {done}  {text}", err=True)
