"""Benchmark 5 (issue #7): an SD2-shaped UNet (real SD2-base config, random weights) on a CUDA GPU.

Raw batched UNet evaluations/s versus evaluations/s achieved inside the BVP solver (17-point path, eps estimator,
D = 4·64·64 = 16384), for fp32/fp16/bf16, with peak GPU memory. Target: solver overhead ≤ 20 %.
Without CUDA it writes "not run"; ``--tiny`` runs a tiny config on the CPU to check the code path.

Usage: python -m benchmarks.gpu [--tiny]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from geovid.backbones.base import DDIMMixin, scaled_linear_alphas_cumprod
from geovid.geometry.bvp import solve_bvp
from geovid.geometry.estimators import make_estimator
from geovid.geometry.metrics import DensityMetric
from geovid.geometry.paths import Sphere, initial_path

RESULTS = Path(__file__).parent / "results"

SD2_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=1024,
                attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
                down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"))
TINY_UNET = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
                 cross_attention_dim=32, attention_head_dim=4,
                 down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))


class UNetBackbone(DDIMMixin):
    """Just enough of a Backbone around a bare UNet for the score estimator."""

    def __init__(self, unet: Any, dtype: torch.dtype, device: str, text_len: int, text_dim: int) -> None:
        self.unet, self.dtype, self.device = unet, dtype, torch.device(device)
        c = unet.config
        self.latent_shape = (c.in_channels, c.sample_size, c.sample_size)
        self.alphas_cumprod = scaled_linear_alphas_cumprod()
        self.network_calls = self.network_batches = 0
        self.cond = torch.randn(1, text_len, text_dim, generator=torch.Generator().manual_seed(0)).to(device, dtype)
        self.name, self.resolution = "sd2-shaped-random", 8 * c.sample_size

    def embed_prompt(self, prompt: str | None) -> torch.Tensor:
        return self.cond

    @torch.no_grad()
    def eps(self, x: torch.Tensor, t: int | torch.Tensor, cond: Any) -> torch.Tensor:
        b = x.shape[0]
        tt = torch.as_tensor(t, device=self.device).expand(b) if torch.as_tensor(t).ndim == 0 else t.to(self.device)
        out = self.unet(x.to(self.device, self.dtype), tt, encoder_hidden_states=cond.expand(b, -1, -1)).sample
        self.network_calls += b
        self.network_batches += 1
        return out.float().cpu()


def bench(config: dict[str, Any], dtype_name: str, device: str, batch: int, iters: int) -> dict[str, Any]:
    from diffusers import UNet2DConditionModel

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**config).to(device, dtype).eval()
    bb = UNetBackbone(unet, dtype, device, 77, config["cross_attention_dim"])
    x = torch.randn(batch, *bb.latent_shape)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    bb.eps(x, 581, bb.cond)  # warm-up
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        bb.eps(x, 581, bb.cond)
    sync()
    raw = batch * iters / (time.perf_counter() - t0)
    d = int(torch.tensor(bb.latent_shape).prod())
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    sphere = Sphere.for_points(torch.stack([a, b]))
    est = make_estimator("eps", bb, 581, bb.cond, max_batch=batch)
    t0 = time.perf_counter()
    res = solve_bvp(initial_path(a, b, batch + 2, sphere), est, DensityMetric(1.0), sphere,
                    max_calls=batch * iters, multilevel=False)
    sync()
    in_solver = res.network_calls / (time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    return {"dtype": dtype_name, "batch": batch, "raw_evals_per_s": raw, "bvp_evals_per_s": in_solver,
            "overhead": 1 - in_solver / raw, "peak_gib": peak, "D": d}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny UNet on the CPU (code-path check only)")
    args = ap.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    if not torch.cuda.is_available() and not args.tiny:
        (RESULTS / "gpu.md").write_text("_Not run: no CUDA device on the machine that ran the benchmarks._\n")
        print("no CUDA: not run")
        return
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    cfg = TINY_UNET if args.tiny else SD2_UNET
    dtypes = ["fp32", "bf16"] if device == "cpu" else ["fp32", "fp16", "bf16"]
    rows = [bench(cfg, dt, device, batch=15, iters=3 if args.tiny else 10) for dt in dtypes]
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (tiny config)"
    lines = [f"Device: {name}.", "", "| dtype | batch | raw UNet evals/s | evals/s inside the BVP | overhead | peak GPU memory (GiB) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dtype']} | {r['batch']} | {r['raw_evals_per_s']:.1f} | {r['bvp_evals_per_s']:.1f} "
                     f"| {100 * r['overhead']:.1f} % | {r['peak_gib']:.2f} |")
    (RESULTS / ("gpu_tiny.md" if args.tiny else "gpu.md")).write_text("\n".join(lines) + "\n")
    (RESULTS / ("gpu_tiny.json" if args.tiny else "gpu.json")).write_text(json.dumps(rows, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
