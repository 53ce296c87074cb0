"""The diffusers backbone on a tiny random SD folder built in code (the same loading path as SD2/bundled)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from geovid.backbones.base import Backbone, DDIMMixin
from geovid.backbones.loader import clear_cache, load_backbone, model_info
from geovid.model.architecture import TINY, build_random_pipeline


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(build_random_pipeline(str(tmp_path_factory.mktemp("tiny-sd") / "model"), TINY, seed=0))


@pytest.fixture(scope="module")
def bb(tiny_folder: Path):
    return load_backbone(str(tiny_folder), device="cpu", dtype="fp32")


def test_loads_through_the_loader_and_satisfies_the_protocol(bb, tiny_folder: Path) -> None:
    assert isinstance(bb, Backbone)
    assert bb.resolution == TINY.resolution == 32
    assert bb.latent_shape == (4, 16, 16)
    assert bb.alphas_cumprod.dtype == torch.float64 and bb.alphas_cumprod.shape == (1000,)
    assert bb.num_train_timesteps == 1000 and bb.steps_offset == 1
    # SD2 schedule: ν = 0.6 → t = 581 (docs/method.md §1).
    assert bb.noise_level_to_timestep(0.6) == 581
    assert load_backbone(str(tiny_folder), device="cpu", dtype="fp32") is bb  # cached per (path, device, dtype)


def test_encode_decode_shapes_and_dtypes(bb) -> None:
    images = torch.rand(3, 3, 32, 32)
    z = bb.encode(images)
    assert z.shape == (3, 4, 16, 16) and z.dtype == torch.float32
    out = bb.decode(z)
    assert out.shape == (3, 3, 32, 32) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    with pytest.raises(ValueError):
        bb.encode(torch.rand(1, 3, 31, 31))  # not a multiple of the VAE factor


def test_encode_batches_match_one_by_one(bb) -> None:
    images = torch.rand(5, 3, 32, 32)
    old = bb.max_batch
    try:
        bb.max_batch = 2
        chunked = bb.encode(images)
    finally:
        bb.max_batch = old
    whole = bb.encode(images)
    assert torch.allclose(chunked, whole, atol=1e-5)


def test_eps_timesteps_cond_broadcast_and_counters(bb) -> None:
    bb.reset_counters()
    x = torch.randn(4, 4, 16, 16)
    c = bb.embed_prompt("a red sphere")
    e = bb.eps(x, 500, c)
    assert e.shape == x.shape and e.dtype == torch.float32 and torch.isfinite(e).all()
    assert bb.network_calls == 4 and bb.network_batches == 1
    # Per-sample timesteps and per-sample conditions give the same numbers as one-by-one calls.
    ts = torch.tensor([10, 200, 500, 900])
    conds = torch.cat([bb.embed_prompt(p) for p in ["", "a red sphere", "a blue cube", "a green cylinder"]])
    batched = bb.eps(x, ts, conds)
    single = torch.cat([bb.eps(x[i:i + 1], int(ts[i]), conds[i:i + 1]) for i in range(4)])
    assert torch.allclose(batched, single, atol=1e-5)
    # Auto-chunking to max_batch: same values, more batches, calls counted per sample.
    old = bb.max_batch
    bb.reset_counters()
    try:
        bb.max_batch = 3
        chunked = bb.eps(x, ts, conds)
    finally:
        bb.max_batch = old
    assert torch.allclose(chunked, batched, atol=1e-5)
    assert bb.network_calls == 4 and bb.network_batches == 2
    with pytest.raises(ValueError):
        bb.eps(x, ts[:2], c)


def test_prompt_embeddings(bb) -> None:
    u = bb.embed_prompt("")
    assert bb.embed_prompt(None) is u and bb.embed_prompt("") is u  # cached per string
    c = bb.embed_prompt("a red sphere left of a blue cube")
    assert c.shape == (1, 32, 16) and not torch.allclose(c, u)
    neg = bb.embed_prompt(bb.negative_prompt)
    assert bb.negative_prompt == bb.default_negative_prompt
    assert all(w in bb.default_negative_prompt for w in ("doubl", "ghost", "distort", "blur", "detail"))
    assert neg.shape == c.shape


def test_batched_guidance_matches_the_mixin(bb) -> None:
    x = torch.randn(2, 4, 16, 16)
    c, u = bb.embed_prompt("a red sphere"), bb.embed_prompt("")
    ours = bb._guided_eps(x, 301, c, 4.0, u)
    ref = DDIMMixin._guided_eps(bb, x, 301, c, 4.0, u)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_invert_then_denoise_is_deterministic_and_close(bb) -> None:
    z0 = bb.encode(torch.rand(2, 3, 32, 32))
    c = bb.embed_prompt("")
    t = bb.noise_level_to_timestep(0.2, 10)
    x = bb.invert(z0, t, c, num_inference_steps=10)
    assert x.shape == z0.shape
    assert torch.equal(x, bb.invert(z0, t, c, num_inference_steps=10))
    back = bb.denoise(x, t, c, num_inference_steps=10)
    assert back.shape == z0.shape and torch.isfinite(back).all()
    # Random weights: no accuracy to expect (the bundled model's round trip is tested in test_backbone_bundled).
    assert not torch.equal(back, x)


def test_bf16_on_cpu(tiny_folder: Path, bb) -> None:
    b16 = load_backbone(str(tiny_folder), device="cpu", dtype="bf16")
    assert b16 is not bb and b16.dtype == torch.bfloat16
    assert next(b16.unet.parameters()).dtype == torch.bfloat16
    x = torch.randn(2, 4, 16, 16)
    e16 = b16.eps(x, 400, b16.embed_prompt("a red sphere"))
    e32 = bb.eps(x, 400, bb.embed_prompt("a red sphere"))
    assert e16.dtype == torch.float32 and torch.isfinite(e16).all()
    assert float((e16 - e32).norm() / e32.norm()) < 0.1
    z = b16.encode(torch.rand(1, 3, 32, 32))
    assert z.dtype == torch.float32 and b16.decode(z).shape == (1, 3, 32, 32)


def test_fp16_on_cpu_is_refused(tiny_folder: Path) -> None:
    from geovid.errors import InputError

    with pytest.raises(InputError, match="fp16 needs a GPU"):
        load_backbone(str(tiny_folder), device="cpu", dtype="fp16")
    with pytest.raises(InputError, match="--dtype"):
        load_backbone(str(tiny_folder), device="cpu", dtype="int8")


def test_prompt_embedding_inversion_is_cached_on_disk(bb, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GEOVID_CACHE_DIR", str(tmp_path))
    z0 = bb.encode(torch.rand(2, 3, 32, 32))
    start = bb.embed_prompt("a red sphere")
    bb.reset_counters()
    emb = bb.invert_prompt_embedding(z0, "a red sphere", t=None, steps=5, lr=1e-2)
    assert emb.shape == start.shape and not torch.allclose(emb, start)
    assert bb.network_calls == 5 * 2  # batch 2 per step
    files = list((tmp_path / "prompt-inversion").glob("*.safetensors"))
    assert len(files) == 1
    again = bb.invert_prompt_embedding(z0, "a red sphere", t=None, steps=5, lr=1e-2)
    assert bb.network_calls == 10  # served from the cache: no network calls
    assert torch.equal(again, emb)
    # A different image (or parameter) is a different cache entry.
    bb.invert_prompt_embedding(z0 + 0.1, "a red sphere", t=None, steps=1, lr=1e-2)
    assert len(list((tmp_path / "prompt-inversion").glob("*.safetensors"))) == 2


def test_prompt_embedding_inversion_lowers_the_denoising_loss(bb, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GEOVID_CACHE_DIR", str(tmp_path))
    z0 = bb.encode(torch.rand(2, 3, 32, 32))

    def loss(c: torch.Tensor) -> float:
        g = torch.Generator().manual_seed(1)
        tot = 0.0
        for t in (100, 300, 500, 700):
            n = torch.randn(z0.shape, generator=g)
            a = bb.alpha_bar(t)
            tot += float((bb.eps(a**0.5 * z0 + (1 - a) ** 0.5 * n, t, c) - n).pow(2).mean())
        return tot

    before = loss(bb.embed_prompt("a red sphere"))
    emb = bb.invert_prompt_embedding(z0, "a red sphere", t=None, steps=40, lr=5e-2)
    assert loss(emb) < before


def test_model_info_counts_parameters_from_headers(tiny_folder: Path, bb) -> None:
    info = model_info(str(tiny_folder))
    assert {"path", "resolution", "latent_shape", "parameters"} <= set(info)
    assert info["resolution"] == 32 and info["latent_shape"] == [4, 16, 16]
    assert info["parameters"] == bb.parameter_counts()
    assert info["scheduler"]["prediction_type"] == "epsilon" and info["scheduler"]["steps_offset"] == 1


# -- broken folders -------------------------------------------------------------------------------------------


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_broken_folders_fail_with_what_is_missing(tiny_folder: Path, tmp_path: Path) -> None:
    from geovid.errors import ModelError

    clear_cache()
    with pytest.raises(ModelError, match="does not exist"):
        load_backbone(str(tmp_path / "nope"))
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file"):
        load_backbone(str(tmp_path / "file.bin"))

    a = _copy(tiny_folder, tmp_path / "a")
    (a / "model_index.json").unlink()
    with pytest.raises(ModelError, match=r"model_index\.json is missing"):
        load_backbone(str(a))

    b = _copy(tiny_folder, tmp_path / "b")
    (b / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ModelError, match="unet weights"):
        load_backbone(str(b))

    c = _copy(tiny_folder, tmp_path / "c")
    shutil.rmtree(c / "tokenizer")
    with pytest.raises(ModelError, match="tokenizer/ folder"):
        load_backbone(str(c))

    d = _copy(tiny_folder, tmp_path / "d")
    (d / "vae" / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_backbone(str(d))

    e = _copy(tiny_folder, tmp_path / "e")
    cfg = json.loads((e / "unet" / "config.json").read_text())
    cfg["in_channels"] = 8  # weights no longer fit the config
    (e / "unet" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=r"cannot load unet|UNet takes 8 channels"):
        load_backbone(str(e))

    f = _copy(tiny_folder, tmp_path / "f")
    cfg = json.loads((f / "scheduler" / "scheduler_config.json").read_text())
    cfg["prediction_type"] = "v_prediction"
    (f / "scheduler" / "scheduler_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="ε-prediction"):
        load_backbone(str(f))


def test_offline_hub_id_fails_fast_with_instructions(tmp_path: Path) -> None:
    """Run in a fresh interpreter so HF_HOME (read at import) points at an empty cache."""
    import os
    import subprocess
    import sys

    code = (
        "import time\n"
        "from geovid.backbones.loader import resolve_model\n"
        "from geovid.errors import ModelError\n"
        "t = time.monotonic()\n"
        "try:\n"
        "    resolve_model('stabilityai/stable-diffusion-2-1-base')\n"
        "except ModelError as e:\n"
        "    print(round(time.monotonic() - t, 3)); print(e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2, out.stderr
    assert float(lines[0]) < 1.0
    msg = lines[1]
    assert "'stabilityai/stable-diffusion-2-1-base' is not in the local Hugging Face cache" in msg
    assert "huggingface-cli download stabilityai/stable-diffusion-2-1-base" in msg and "--model PATH" in msg
    assert not math.isnan(float(lines[0]))


def test_hub_id_resolves_from_the_local_cache(tiny_folder: Path, tmp_path: Path, monkeypatch) -> None:
    """A hub id whose snapshot is in the local cache loads offline through the same loader."""
    from geovid.backbones.loader import resolve_model

    cache = tmp_path / "hub"
    repo = cache / "models--someone--tiny-sd-mirror"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert resolve_model("someone/tiny-sd-mirror") == repo / "snapshots" / commit
    clear_cache()
    hub_bb = load_backbone("someone/tiny-sd-mirror", device="cpu")
    assert hub_bb.name == "someone/tiny-sd-mirror" and hub_bb.latent_shape == (4, 16, 16)
