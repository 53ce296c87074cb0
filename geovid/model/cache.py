"""A latent training set rendered and VAE-encoded once, so a UNet step is only the UNet (docs/model.md).

Rendering a scene costs ~1 ms but VAE-encoding it ~17 ms on one CPU core -- five times a UNet training step per
sample. Training on the fly therefore spent most of its time outside the UNet. :func:`build_latent_cache` renders
``n`` training scenes (seeds ``0 … n-1``, all below the held-out range), replaces a share of them by degraded
versions with artefact captions (:mod:`geovid.model.artefacts`), encodes them with the model's VAE and stores
the posterior mean and standard deviation as float16 arrays on disk, with the captions and a manifest:

    <cache>/manifest.json   n, done, artefact fraction, seed, VAE fingerprint, scaling factor
    <cache>/mean.npy        (n, C, h, w) float16, memory-mapped
    <cache>/std.npy         (n, C, h, w) float16
    <cache>/captions.json   n captions (written when complete)
    <cache>/kinds.json      n artefact kinds ("" for a clean scene)

A build is resumable (chunks are written in order and ``done`` advances after each), runs in several worker
processes, and is tied to the VAE weights by a fingerprint: a different VAE refuses the cache.
:func:`load_latent_cache` maps a complete cache into memory in seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing as mp
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geovid.progress import ProgressFn, null_progress


def vae_fingerprint(vae_dir: str | Path) -> str:
    """sha256 (first 16 hex digits) of the VAE weights file."""
    path = Path(vae_dir) / "diffusion_pytorch_model.safetensors"
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _item(seed: int, artefact_fraction: float, base_seed: int, size: int) -> tuple[np.ndarray, str, str]:
    from geovid.model.artefacts import render_degraded
    from geovid.world.render import render_seed

    rng = np.random.default_rng([base_seed, seed, 1])
    if rng.random() < artefact_fraction:
        return render_degraded(seed, size)
    img, cap, _ = render_seed(seed, size)
    return img, cap, ""


_WORKER: dict[str, Any] = {}


def _init_worker(vae_dir: str, threads: int) -> None:
    import cv2
    from diffusers import AutoencoderKL

    from geovid.backbones.loader import quiet_libraries

    torch.set_num_threads(threads)
    cv2.setNumThreads(1)
    with quiet_libraries():
        _WORKER["vae"] = AutoencoderKL.from_pretrained(vae_dir).eval()


def _encode_chunk(args: tuple[Sequence[int], float, int, int]) -> tuple[np.ndarray, np.ndarray, list[str],
                                                                       list[str]]:
    seeds, frac, base_seed, size = args
    items = [_item(s, frac, base_seed, size) for s in seeds]
    imgs = np.stack([it[0] for it in items])
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div_(255.0)
    means, stds = [], []
    with torch.no_grad():
        # Small encoder batches: at 64×64 one batch of 512 allocates ~270 MB per activation, and the page
        # faults of such allocations cost as much system time as the convolutions.
        for i in range(0, len(x), 32):
            post = _WORKER["vae"].encode(x[i:i + 32] * 2 - 1).latent_dist
            means.append(post.mean.numpy().astype(np.float16))
            stds.append(post.std.numpy().astype(np.float16))
    return np.concatenate(means), np.concatenate(stds), [it[1] for it in items], [it[2] for it in items]


@dataclass
class LatentCache:
    """A loaded cache: ``mean``/``std`` (n, C, h, w) float16 tensors, captions, kinds and the manifest."""

    mean: torch.Tensor
    std: torch.Tensor
    captions: list[str]
    kinds: list[str]
    manifest: dict[str, Any]

    def __len__(self) -> int:
        return int(self.mean.shape[0])


def build_latent_cache(model_dir: str | Path, cache: str | Path, n: int = 300_000,
                       artefact_fraction: float = 0.15, seed: int = 0, workers: int = 2, chunk: int = 512,
                       progress: ProgressFn = null_progress) -> dict[str, Any]:
    """Render, degrade and encode ``n`` training scenes into ``cache`` (see the module docstring).

    Args:
        model_dir: a model folder with a trained ``vae/``.
        cache: output folder (created; an unfinished build of the same settings is continued).
        n: number of scenes (seeds ``0 … n-1``).
        artefact_fraction: share of degraded scenes (artefact captions).
        seed: decides which scenes are degraded and how.
        workers: encoding processes (one torch thread each); 0 encodes in this process.
        chunk: scenes per work item.
        progress: ``progress("cache", done, n, info)`` after each chunk.

    Returns:
        The manifest.
    """
    from geovid.errors import InputError
    from geovid.model.data import HELDOUT_SEED_START

    if not 0 < n <= HELDOUT_SEED_START:
        raise InputError(f"--scenes must be 1…{HELDOUT_SEED_START} (training seeds only), got {n}")
    model_dir, cache = Path(model_dir), Path(cache)
    vae_dir = model_dir / "vae"
    cfg = json.loads((vae_dir / "config.json").read_text())
    size = int(cfg["sample_size"])
    c = int(cfg["latent_channels"])
    h = size // 2 ** (len(cfg["block_out_channels"]) - 1)
    settings = {"n": n, "artefact_fraction": artefact_fraction, "seed": seed, "resolution": size,
                "latent_shape": [c, h, h], "vae": vae_fingerprint(vae_dir),
                "scaling_factor": float(cfg.get("scaling_factor", 1.0))}
    cache.mkdir(parents=True, exist_ok=True)
    man_path = cache / "manifest.json"
    manifest = json.loads(man_path.read_text()) if man_path.is_file() else {}
    if manifest and {k: manifest.get(k) for k in settings} != settings:
        raise InputError(f"{cache} holds a latent cache with other settings or another VAE; use a new folder")
    done = int(manifest.get("done", 0))
    mode = "r+" if done else "w+"
    mean = np.lib.format.open_memmap(cache / "mean.npy", mode=mode, dtype=np.float16, shape=(n, c, h, h))
    std = np.lib.format.open_memmap(cache / "std.npy", mode=mode, dtype=np.float16, shape=(n, c, h, h))
    part = cache / "captions.partial.jsonl"
    if part.exists():  # keep exactly the rows of the finished chunks (a kill may leave a few more)
        lines = part.read_text().splitlines()[:done]
        part.write_text("".join(line + "\n" for line in lines))
    jobs = [(list(range(s, min(n, s + chunk))), artefact_fraction, seed, size) for s in range(done, n, chunk)]
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        if workers > 0:
            pool = stack.enter_context(mp.get_context("spawn").Pool(workers, initializer=_init_worker,
                                                                    initargs=(str(vae_dir), 1)))
            results = pool.imap(_encode_chunk, jobs)
        else:  # in this process (tests, tiny caches)
            _init_worker(str(vae_dir), torch.get_num_threads())
            results = map(_encode_chunk, jobs)
        capf = stack.enter_context(open(part, "a"))
        for job, (m, s, caps, kinds) in zip(jobs, results):
            lo, hi = job[0][0], job[0][-1] + 1
            mean[lo:hi], std[lo:hi] = m, s
            for cap, kind in zip(caps, kinds):
                capf.write(json.dumps([cap, kind]) + "\n")
            capf.flush()
            mean.flush()
            std.flush()
            done = hi
            _write_json(man_path, {**settings, "done": done, "complete": False})
            rate = (done - (jobs[0][0][0])) / max(1e-9, time.monotonic() - t0)
            progress("cache", done, n, {"scenes/s": round(rate, 1)})
    rows = [json.loads(line) for line in part.read_text().splitlines()]
    _write_json(cache / "captions.json", [r[0] for r in rows])
    _write_json(cache / "kinds.json", [r[1] for r in rows])
    counts = {k: sum(1 for r in rows if r[1] == k) for k in sorted({r[1] for r in rows})}
    manifest = {**settings, "done": n, "complete": True, "kinds": counts,
                "seconds": round(time.monotonic() - t0, 1)}
    _write_json(man_path, manifest)
    return manifest


def refresh_latent_cache(model_dir: str | Path, cache: str | Path, kinds: Sequence[str], workers: int = 2,
                         chunk: int = 256, progress: ProgressFn = null_progress) -> dict[str, int]:
    """Re-render and re-encode the finished rows of the artefact ``kinds`` with the current generator.

    For a change to one artefact kind (:mod:`geovid.model.artefacts`) without rebuilding the whole cache: which
    rows are degraded, and with which kind, depends only on the seed, so the other rows stay valid. Returns
    ``{kind: rows re-encoded}``.
    """
    from geovid.errors import InputError
    from geovid.model.artefacts import KINDS

    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise InputError(f"unknown artefact kind(s) {', '.join(unknown)} (known: {', '.join(KINDS)})")
    model_dir, cache = Path(model_dir), Path(cache)
    man_path = cache / "manifest.json"
    if not man_path.is_file():
        raise InputError(f"{cache} is not a latent cache (no manifest.json)")
    manifest = json.loads(man_path.read_text())
    if vae_fingerprint(model_dir / "vae") != manifest["vae"]:
        raise InputError(f"the latent cache {cache} was made with another VAE")
    done, complete = int(manifest["done"]), bool(manifest.get("complete"))
    if complete:
        rows = [list(r) for r in zip(json.loads((cache / "captions.json").read_text()),
                                     json.loads((cache / "kinds.json").read_text()))]
    else:
        rows = [json.loads(line) for line in (cache / "captions.partial.jsonl").read_text().splitlines()[:done]]
    todo = [i for i, r in enumerate(rows) if r[1] in set(kinds)]
    mean = np.load(cache / "mean.npy", mmap_mode="r+")
    std = np.load(cache / "std.npy", mmap_mode="r+")
    frac, seed, size = manifest["artefact_fraction"], manifest["seed"], manifest["resolution"]
    jobs = [(todo[s:s + chunk], frac, seed, size) for s in range(0, len(todo), chunk)]
    with contextlib.ExitStack() as stack:
        if workers > 0:
            pool = stack.enter_context(mp.get_context("spawn").Pool(workers, initializer=_init_worker,
                                                                    initargs=(str(model_dir / "vae"), 1)))
            results = pool.imap(_encode_chunk, jobs)
        else:
            _init_worker(str(model_dir / "vae"), torch.get_num_threads())
            results = map(_encode_chunk, jobs)
        n_done = 0
        for job, (m, s, caps, new_kinds) in zip(jobs, results):
            idx = np.asarray(job[0])
            if [rows[i][1] for i in idx] != list(new_kinds):
                raise RuntimeError("the artefact kinds of the cache rows changed; rebuild the cache instead")
            mean[idx], std[idx] = m, s
            for i, cap in zip(idx, caps):
                rows[i][0] = cap
            n_done += len(idx)
            progress("refresh", n_done, len(todo), {})
    mean.flush()
    std.flush()
    if complete:
        _write_json(cache / "captions.json", [r[0] for r in rows])
    else:
        from geovid.runs.store import atomic_write_bytes

        atomic_write_bytes(cache / "captions.partial.jsonl",
                           "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8"))
    counts = {k: sum(1 for i in todo if rows[i][1] == k) for k in kinds}
    _write_json(man_path, {**manifest, "refreshed": {**manifest.get("refreshed", {}), **counts}})
    return counts


def _write_json(path: Path, obj: Any) -> None:
    from geovid.runs.store import atomic_write_bytes

    atomic_write_bytes(path, json.dumps(obj).encode("utf-8"))


def load_latent_cache(cache: str | Path, vae_dir: str | Path | None = None,
                      partial: bool = False) -> LatentCache:
    """Load a cache (memory-mapped float16, read into memory); with ``vae_dir``, refuse one made by another VAE.

    ``partial=True`` accepts an unfinished build and loads its finished rows (a training run can start while
    the cache is still growing, or use a prefix of it).
    """
    from geovid.errors import ModelError

    cache = Path(cache)
    man_path = cache / "manifest.json"
    if not man_path.is_file():
        raise ModelError(f"{cache} is not a latent cache (no manifest.json); build it with "
                         f"`geovid train cache --out MODEL --cache {cache}`")
    manifest = json.loads(man_path.read_text())
    done = int(manifest.get("done", 0))
    if not manifest.get("complete") and not (partial and done > 0):
        raise ModelError(f"the latent cache {cache} is incomplete ({done} of "
                         f"{manifest.get('n')} scenes); rerun the same `geovid train cache` command to finish it")
    if vae_dir is not None and vae_fingerprint(vae_dir) != manifest["vae"]:
        raise ModelError(f"the latent cache {cache} was made with another VAE; build a new one")
    mean = torch.from_numpy(np.array(np.load(cache / "mean.npy", mmap_mode="r")[:done]))
    std = torch.from_numpy(np.array(np.load(cache / "std.npy", mmap_mode="r")[:done]))
    if manifest.get("complete"):
        captions = json.loads((cache / "captions.json").read_text())
        kinds = json.loads((cache / "kinds.json").read_text())
    else:
        rows = [json.loads(line) for line in (cache / "captions.partial.jsonl").read_text().splitlines()[:done]]
        captions, kinds = [r[0] for r in rows], [r[1] for r in rows]
    return LatentCache(mean=mean, std=std, captions=captions, kinds=kinds, manifest=manifest)
