"""Finding and loading Stable-Diffusion-format models: the one loader for SD2 and the bundled tiny SD.

``--model`` takes

* nothing / ``"bundled"`` -- the tiny SD shipped inside the package (``geovid/assets/tiny-sd``);
* a local folder in the diffusers SD layout (``model_index.json``, ``vae/``, ``unet/``, ``text_encoder/``,
  ``tokenizer/``, ``scheduler/``);
* a Hugging Face hub id (``stabilityai/stable-diffusion-2-1-base`` or a community mirror), looked up in the
  local Hugging Face cache only: loading never downloads, and a missing model fails at once with a message
  that says how to get it.

Folders are validated before loading so that a broken one fails with what is missing, not a traceback from
deep inside diffusers. Loaded backbones are cached per (folder, device, dtype) for the life of the process.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geovid.errors import InputError, ModelError

if TYPE_CHECKING:
    from geovid.backbones.diffusers_sd import DiffusersBackbone

#: The model id recorded in manifests for the shipped model.
BUNDLED_NAME = "bundled:geovid-tiny-sd"
_BUNDLED_ALIASES = {None, "", "bundled", BUNDLED_NAME}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_COMPONENTS = ("vae", "unet", "text_encoder", "tokenizer", "scheduler")
_WEIGHT_NAMES = {
    "vae": ("diffusion_pytorch_model",), "unet": ("diffusion_pytorch_model",),
    "text_encoder": ("model", "pytorch_model"),
}
_CACHE: dict[tuple[str, str, str], Any] = {}


def bundled_model_path() -> Path:
    """The shipped model folder (inside the installed package, via importlib.resources)."""
    from importlib.resources import files

    return Path(str(files("geovid") / "assets" / "tiny-sd"))


def model_name(model: str | None) -> str:
    """The id a run records for ``model``: ``bundled:geovid-tiny-sd``, a hub id, or an absolute folder path."""
    if model in _BUNDLED_ALIASES:
        return BUNDLED_NAME
    p = Path(str(model)).expanduser()
    return str(p.resolve()) if p.exists() else str(model)


def _hub_missing(repo_id: str) -> ModelError:
    return ModelError(
        f"model '{repo_id}' is not in the local Hugging Face cache; download it on a connected machine with "
        f"`huggingface-cli download {repo_id}` (then copy the cache, or set HF_HOME to it) or pass a local "
        "folder with --model PATH")


def resolve_model(model: str | None) -> Path:
    """The local folder of ``model`` (bundled, folder, or hub id in the local cache), never downloading.

    Raises:
        ModelError: the folder does not exist, or the hub id is not in the local cache (fails in well under a
            second, offline or not).
    """
    if model in _BUNDLED_ALIASES:
        path = bundled_model_path()
        if not (path / "model_index.json").is_file():
            raise ModelError(f"the bundled model is missing from the installation ({path}); reinstall geovid "
                             "or pass --model PATH")
        return path
    text = str(model)
    if text.startswith("analytic:"):
        raise ModelError(f"{text!r} is an analytic model, not a Stable-Diffusion folder or hub id")
    p = Path(text).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ModelError(f"model '{text}' is a file; pass a Stable-Diffusion folder (with model_index.json)")
        return p.resolve()
    if _HUB_ID.match(text) and not text.startswith((".", "~")):
        return _resolve_hub(text)
    raise ModelError(f"model folder '{text}' does not exist (pass a Stable-Diffusion folder, a hub id such as "
                     "stabilityai/stable-diffusion-2-1-base, or nothing for the bundled model)")


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, from the same environment variables huggingface_hub reads."""
    import os

    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def _resolve_hub(repo_id: str) -> Path:
    # Fast path: no cache entry at all means there is nothing to find, and answering needs no import of
    # huggingface_hub (which alone can take a second on a busy machine).
    if not (hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))).is_dir():
        raise _hub_missing(repo_id)
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub comes with diffusers
        raise _hub_missing(repo_id) from None
    try:
        # local_files_only: only the cache is consulted, so this never touches the network.
        return Path(snapshot_download(repo_id, local_files_only=True, cache_dir=str(hub_cache_dir())))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        raise _hub_missing(repo_id) from None


def validate_folder(path: Path) -> dict[str, Any]:
    """Check a Stable-Diffusion folder before loading; returns its ``model_index.json``.

    Raises:
        ModelError: naming the missing or unreadable part (index, component folder, config, weights).
    """
    index_file = path / "model_index.json"
    if not index_file.is_file():
        raise ModelError(f"'{path}' is not a Stable-Diffusion folder: model_index.json is missing")
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"'{index_file}' is not valid JSON ({exc})") from None
    missing = [c for c in _COMPONENTS if not isinstance(index.get(c), list) or index.get(c)[0] is None]
    if missing:
        raise ModelError(f"'{path}': model_index.json names no {', '.join(missing)}")
    problems = []
    for comp in _COMPONENTS:
        d = path / comp
        if not d.is_dir():
            problems.append(f"{comp}/ folder")
            continue
        if comp == "scheduler":
            if not (d / "scheduler_config.json").is_file():
                problems.append("scheduler/scheduler_config.json")
            continue
        if comp == "tokenizer":
            if not ((d / "vocab.json").is_file() or (d / "tokenizer.json").is_file()):
                problems.append("tokenizer/vocab.json (or tokenizer.json)")
            continue
        if not (d / "config.json").is_file():
            problems.append(f"{comp}/config.json")
        stems = _WEIGHT_NAMES[comp]
        if not any(f.name.startswith(stems) and f.suffix in (".safetensors", ".bin")
                   for f in d.iterdir()) and not any(d.glob("*.index.json")):
            problems.append(f"{comp} weights ({stems[0]}.safetensors)")
    if problems:
        raise ModelError(f"'{path}' is incomplete: missing {', '.join(problems)}")
    for comp in ("vae", "unet", "text_encoder"):
        try:
            json.loads((path / comp / "config.json").read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ModelError(f"'{path / comp / 'config.json'}' is not valid JSON ({exc})") from None
    return index


def resolve_device(device: str | None) -> str:
    """``None``/``"auto"`` → cuda if present, else mps, else cpu; otherwise checked and returned."""
    import torch

    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    dev = str(device).lower()
    kind = dev.split(":")[0]
    if kind not in ("cpu", "cuda", "mps"):
        raise InputError(f"--device must be cpu, cuda or mps, got {device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for but no CUDA device is available (this torch build: "
                         f"{torch.__version__}); use --device cpu")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) is not None
                              and torch.backends.mps.is_available()):
        raise InputError("--device mps was asked for but MPS is not available; use --device cpu")
    return dev


def resolve_dtype(dtype: str | None, device: str) -> Any:
    """``fp32``/``fp16``/``bf16`` (or the torch names) → torch dtype; fp16 needs a GPU."""
    from geovid.backbones.diffusers_sd import DTYPES

    key = (dtype or "fp32").lower()
    if key not in DTYPES:
        raise InputError(f"--dtype must be fp32, fp16 or bf16, got {dtype!r}")
    import torch

    if DTYPES[key] == torch.float16 and device.startswith("cpu"):
        raise InputError("--dtype fp16 needs a GPU (many CPU kernels lack half precision); use bf16 or fp32 on CPU")
    return DTYPES[key]


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence diffusers/transformers info chatter and progress bars while loading."""
    import diffusers
    import transformers

    d_level, t_level = diffusers.logging.get_verbosity(), transformers.logging.get_verbosity()
    diffusers.logging.set_verbosity_error()
    transformers.logging.set_verbosity_error()
    d_bars = diffusers.utils.logging.is_progress_bar_enabled()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        diffusers.logging.set_verbosity(d_level)
        transformers.logging.set_verbosity(t_level)
        if d_bars:
            diffusers.utils.logging.enable_progress_bar()
        transformers.utils.logging.enable_progress_bar()


def load_backbone(model: str | None = None, device: str | None = None, dtype: str = "fp32",
                  max_batch: int | None = None) -> DiffusersBackbone:
    """Load a Stable-Diffusion-format model as a :class:`~geovid.backbones.diffusers_sd.DiffusersBackbone`.

    Args:
        model: ``None``/``"bundled"``, a local SD folder, or a hub id in the local cache.
        device: ``cpu``, ``cuda``, ``mps`` or ``None`` (auto).
        dtype: ``fp32``, ``fp16`` (GPU only) or ``bf16``.
        max_batch: latents per network call (default: 64 for small models, 8 for SD-sized ones).

    Returns:
        The backbone; the same object for the same (folder, device, dtype) within a process.

    Raises:
        ModelError: unknown/missing model, broken folder, or components that do not fit together.
        InputError: bad device or dtype.
    """

    path = resolve_model(model)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    key = (str(path), dev, str(torch_dtype))
    if key in _CACHE:
        return _CACHE[key]
    validate_folder(path)
    bb = _load(path, model_name(model), dev, torch_dtype, max_batch)
    _CACHE[key] = bb
    return bb


def _load(path: Path, name: str, device: str, dtype: Any, max_batch: int | None):
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from geovid.backbones.diffusers_sd import DiffusersBackbone

    def load(comp: str, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:  # any failure inside diffusers/transformers becomes one clear line
            msg = " ".join(str(exc).split())[:300]
            raise ModelError(f"cannot load {comp} from '{path}': {type(exc).__name__}: {msg}") from None

    with quiet_libraries():
        vae = load("vae", lambda: AutoencoderKL.from_pretrained(str(path), subfolder="vae", local_files_only=True))
        unet = load("unet", lambda: UNet2DConditionModel.from_pretrained(str(path), subfolder="unet",
                                                                         local_files_only=True))
        text_encoder = load("text_encoder", lambda: CLIPTextModel.from_pretrained(
            str(path), subfolder="text_encoder", local_files_only=True))
        tokenizer = load("tokenizer", lambda: CLIPTokenizer.from_pretrained(str(path), subfolder="tokenizer",
                                                                             local_files_only=True))
        # Whatever scheduler the folder names (SD2 ships PNDM), geovid uses DDIM with the folder's schedule.
        scheduler = load("scheduler", lambda: DDIMScheduler.from_pretrained(str(path), subfolder="scheduler",
                                                                            local_files_only=True))
    latent_c = int(vae.config.latent_channels)
    if int(unet.config.in_channels) != latent_c:
        raise ModelError(f"'{path}': the UNet takes {unet.config.in_channels} channels but the VAE makes "
                         f"{latent_c}")
    cad = unet.config.cross_attention_dim
    cad = cad[0] if isinstance(cad, list | tuple) else cad
    if int(cad) != int(text_encoder.config.hidden_size):
        raise ModelError(f"'{path}': the UNet attends to {cad}-d text features but the text encoder makes "
                         f"{text_encoder.config.hidden_size}")
    pred = scheduler.config.get("prediction_type", "epsilon")
    if pred != "epsilon":
        raise ModelError(f"'{path}': the scheduler predicts {pred!r}; geovid's scores need ε-prediction "
                         "(prediction_type 'epsilon', e.g. SD2-base, not the 768-v model)")
    # SD's VAE is numerically fragile in fp16; diffusers marks such VAEs force_upcast, so keep them in fp32.
    vae_dtype = torch.float32 if dtype == torch.float16 and vae.config.get("force_upcast", False) else dtype
    with quiet_libraries():  # diffusers warns about casting with .to() even when nothing must stay fp32
        for m, dt in ((vae, vae_dtype), (unet, dtype), (text_encoder, dtype)):
            m.to(device=device, dtype=dt).eval().requires_grad_(False)
    if max_batch is None:
        n_unet = sum(p.numel() for p in unet.parameters())
        max_batch = 64 if n_unet < 50_000_000 else 8
    bb = DiffusersBackbone(name=name, path=path, vae=vae, unet=unet, text_encoder=text_encoder,
                           tokenizer=tokenizer, scheduler_config=dict(scheduler.config),
                           alphas_cumprod=scheduler.alphas_cumprod, device=torch.device(device), dtype=dtype,
                           vae_dtype=vae_dtype, max_batch=max_batch)
    neg = model_extras(path).get("negative_prompt")
    if isinstance(neg, str):
        bb.default_negative_prompt = bb.negative_prompt = neg
    return bb


#: geovid's own file in a model folder (ignored by diffusers): what the model was trained to know, e.g. the
#: ``negative_prompt`` made of the artefact words it saw in training (docs/model.md).
EXTRAS_FILE = "geovid.json"


def model_extras(path: Path) -> dict[str, Any]:
    """The folder's :data:`EXTRAS_FILE` as a dict (empty when absent or unreadable)."""
    f = Path(path) / EXTRAS_FILE
    try:
        data = json.loads(f.read_text(encoding="utf-8")) if f.is_file() else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def clear_cache() -> None:
    """Forget the loaded backbones (tests; freeing memory)."""
    _CACHE.clear()


def model_info(model: str | None = None) -> dict[str, Any]:
    """Facts about a model folder without loading its weights (configs + safetensors headers).

    Keys: ``name``, ``path``, ``resolution``, ``latent_shape``, ``latent_dim``, ``parameters`` (per component
    and ``total``), ``size_bytes``, ``dtypes`` (stored weight dtypes), ``scheduler`` (the folder's class, the one geovid
    uses -- always DDIM --, schedule, steps, offset, prediction type), ``text`` (tokenizer length, hidden size).
    """
    path = resolve_model(model)
    validate_folder(path)

    def cfg(comp: str, fname: str = "config.json") -> dict[str, Any]:
        return json.loads((path / comp / fname).read_text(encoding="utf-8"))

    vae, unet, text = cfg("vae"), cfg("unet"), cfg("text_encoder")
    sched = cfg("scheduler", "scheduler_config.json")
    size = unet.get("sample_size", 64)
    size = size[0] if isinstance(size, list) else int(size)
    factor = 2 ** (len(vae.get("block_out_channels", [0])) - 1)
    params: dict[str, int] = {}
    dtypes: set[str] = set()
    for comp in ("vae", "text_encoder", "unet"):
        n, dts = _count_parameters(path / comp)
        params[comp] = n
        dtypes |= dts
    params["total"] = sum(params.values())
    tok_cfg = path / "tokenizer" / "tokenizer_config.json"
    max_len = json.loads(tok_cfg.read_text()).get("model_max_length") if tok_cfg.is_file() else None
    return {
        "name": model_name(model),
        "path": str(path),
        "resolution": size * factor,
        "latent_shape": [int(unet.get("in_channels", 4)), size, size],
        "latent_dim": int(unet.get("in_channels", 4)) * size * size,
        "parameters": params,
        "size_bytes": sum(f.stat().st_size for f in path.rglob("*") if f.is_file()),
        "dtypes": sorted(dtypes),
        "scheduler": {
            "class": sched.get("_class_name"), "used": "DDIMScheduler",
            "beta_schedule": sched.get("beta_schedule"), "beta_start": sched.get("beta_start"),
            "beta_end": sched.get("beta_end"), "num_train_timesteps": sched.get("num_train_timesteps"),
            "steps_offset": sched.get("steps_offset", 0),
            "prediction_type": sched.get("prediction_type", "epsilon"),
        },
        "text": {"hidden_size": text.get("hidden_size"), "layers": text.get("num_hidden_layers"),
                 "max_length": max_len, "vocab_size": text.get("vocab_size")},
        "vae_scaling_factor": vae.get("scaling_factor"),
        "negative_prompt": _negative_prompt(path),
        "trained_on_artefacts": bool(model_extras(path).get("artefact_kinds")),
    }


def _negative_prompt(path: Path) -> str:
    from geovid.backbones.diffusers_sd import DEFAULT_NEGATIVE_PROMPT

    neg = model_extras(path).get("negative_prompt")
    return neg if isinstance(neg, str) else DEFAULT_NEGATIVE_PROMPT


def _count_parameters(folder: Path) -> tuple[int, set[str]]:
    """Parameter count and dtypes from safetensors headers (no tensor data is read)."""
    files = sorted(folder.glob("*.safetensors"))
    # Prefer the plain weights over variants (fp16/ema) when a hub snapshot holds several.
    plain = [f for f in files if f.name.count(".") == 1]
    files = plain or files[:1]
    total, dtypes = 0, set()
    for f in files:
        with open(f, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        for key, meta in header.items():
            if key == "__metadata__":
                continue
            dtypes.add(meta["dtype"])
            count = 1
            for d in meta["shape"]:
                count *= int(d)
            total += count
    return total, dtypes
