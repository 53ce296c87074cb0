"""Choose the bundled UNet by quality per CPU-minute (issue #11; table in docs/model.md).

    .venv/bin/python -m benchmarks.unet_arch --cache CACHE [--minutes 4] [--threads 2]

Each candidate (:data:`CANDIDATES`) is trained from scratch for the same CPU-time budget (steps = budget ×
its measured samples per CPU second; independent of other load on the machine) on the same latent
cache (:mod:`geovid.model.cache`) with the same optimiser settings, on the shipped VAE; then its held-out
denoising loss (ε-MSE averaged over ten fixed timesteps and noises, :func:`geovid.model.evaluate.denoising_loss`,
an ELBO proxy) is measured on 256 held-out scenes under their captions. Throughput is measured separately
(5 timed steps after 2 warm-up steps, batch 64, random inputs). Rule, written before the run: lowest held-out
loss after the same CPU minutes wins; the throughput goal (>= 100 samples/s on 2 cores) is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch

from geovid.model.architecture import BUNDLED, ModelSpec, build_unet

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

V1 = replace(BUNDLED, unet_layers=2, unet_only_cross_attention=False)
CANDIDATES: dict[str, ModelSpec] = {
    "v1 (2 layers, self-attention at every level)": V1,
    "2 layers, no self-attention at 16×16": replace(V1, unet_only_cross_attention=(True, False, False)),
    "1 layer, self-attention at every level": replace(V1, unet_layers=1),
    "1 layer, no self-attention at 16×16": replace(V1, unet_layers=1, unet_only_cross_attention=(True, False, False)),
}


def throughput(spec: ModelSpec, threads: int, batch: int = 64) -> tuple[float, float, int]:
    """UNet training samples (forward + backward + AdamW) per wall second and per CPU second, and its size.

    Per CPU second (``time.process_time``, all threads) does not depend on what else the machine runs.
    """
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    unet = build_unet(spec).train()
    opt = torch.optim.AdamW(unet.parameters(), 1e-4)
    x = torch.randn(batch, 4, 16, 16)
    c = torch.randn(batch, 32, spec.text_hidden)
    t = torch.randint(0, 1000, (batch,))
    for i in range(7):
        if i == 2:
            t0, c0 = time.perf_counter(), time.process_time()
        loss = (unet(x, t, encoder_hidden_states=c).sample - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return batch * 5 / wall, batch * 5 / cpu, sum(p.numel() for p in unet.parameters())


def heldout_set(backbone, n: int = 256):
    from geovid.model.data import heldout_seeds, render_scenes

    images, captions = render_scenes(heldout_seeds(n, start=2_000_000))
    z0 = backbone.encode(images)
    cond = torch.cat([backbone.embed_prompt(c) for c in captions])
    return z0, cond


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", required=True)
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/geovid-unet-arch")
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    from geovid.backbones.loader import clear_cache, load_backbone
    from geovid.model.evaluate import denoising_loss
    from geovid.model.train import TrainConfig, train_unet

    vae_src = Path(__file__).resolve().parents[1] / "geovid" / "assets" / "tiny-sd" / "vae"
    rows = []
    for name, spec in CANDIDATES.items():
        if args.only and not any(o in name for o in args.only):
            continue
        sps, cpu_sps, nparam = throughput(spec, args.threads)
        steps = int(args.minutes * 60 * cpu_sps / 64)  # the same CPU budget for every candidate
        out = Path(args.work) / name.split(" (")[0].replace(" ", "_").replace(",", "").replace("×", "x")
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(vae_src, out / "vae")
        cfg = TrainConfig(steps=steps, batch=64, lr=1e-3, threads=args.threads,
                          warmup=50, checkpoint_minutes=1e9)
        summary = train_unet(out, cfg, spec, cache=args.cache)
        clear_cache()
        bb = load_backbone(str(out))
        z0, cond = heldout_set(bb)
        loss = float(denoising_loss(bb, z0, cond).mean())
        row = {"candidate": name, "parameters": nparam, "samples_per_s_unet": round(sps, 1),
               "samples_per_cpu_s": round(cpu_sps, 1),
               "train_steps": summary["steps"], "train_samples_per_s": summary["samples_per_second"],
               "heldout_loss": round(loss, 5)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "unet_arch.json").write_text(json.dumps({"minutes": args.minutes, "threads": args.threads,
                                                        "rows": rows}, indent=2))
    lines = [f"Each trained {args.minutes:g} CPU-minutes from scratch ({args.threads} threads, batch 64, lr 1e-3), "
             "held-out ε-MSE over 10 fixed timesteps on 256 held-out scenes:", "",
             "| candidate | parameters | UNet samples/s (wall) | samples per CPU-s | steps | held-out loss |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['candidate']} | {r['parameters'] / 1e6:.2f} M | {r['samples_per_s_unet']} | "
                     f"{r['samples_per_cpu_s']} | {r['train_steps']} | {r['heldout_loss']:.4f} |")
    (RESULTS / "unet_arch.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
