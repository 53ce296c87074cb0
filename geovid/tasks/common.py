"""Plumbing shared by the interpolation and extrapolation jobs: progress with cancel, opening (or resuming) a
run, resumable state in the run folder, loading the model and the input images.

Resumable state lives in ``RUN/state/<name>.safetensors`` (tensors plus a JSON blob in the safetensors
metadata), written atomically at the end of each expensive phase, so ``--resume`` after Ctrl-C (or a cancel from
the TUI) skips the phases listed in the manifest's ``phases_done`` and reloads their results from here.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geovid.errors import InputError
from geovid.progress import Cancelled, ProgressFn, null_progress
from geovid.runs.store import Run


def with_cancel(progress: ProgressFn | None, cancel: threading.Event | None) -> ProgressFn:
    """A progress callback that raises :class:`Cancelled` once ``cancel`` is set, then forwards to ``progress``."""
    inner = progress or null_progress

    def cb(phase: str, done: int, total: int | None, info: dict[str, Any]) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        inner(phase, done, total, info)

    return cb


def step_progress(progress: ProgressFn, phase: str, **info: Any) -> Any:
    """Adapter to the ``progress(done, total)`` callbacks of the backbone's DDIM loops."""
    return lambda done, total: progress(phase, done, total, dict(info))


def check_input_file(path: str | os.PathLike[str], what: str) -> Path:
    """Fail early (before a run folder exists) when an input file is missing."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{what} {p}: no such file")
    return p


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        m = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) else None


def _abs_inputs(inputs: list[Any]) -> list[str]:
    return [os.path.abspath(os.fspath(p)) if isinstance(p, str | os.PathLike) else str(p) for p in inputs]


def find_previous(out: Path, kind: str, inputs: list[Any], config: Mapping[str, Any]) -> Path | None:
    """Newest run of ``kind`` in ``out`` made from these inputs with these options (``--resume`` without a name)."""
    from geovid.runs.store import to_jsonable

    if not out.is_dir():
        return None
    want_inputs, want_cfg = _abs_inputs(inputs), to_jsonable(dict(config))
    best: tuple[str, Path] | None = None
    for entry in os.scandir(out):
        m = _read_manifest(Path(entry.path))
        if (m is None or m.get("kind") != kind or m.get("inputs") != want_inputs
                or to_jsonable(m.get("config") or {}) != want_cfg):
            continue
        key = str(m.get("created", ""))
        if best is None or key > best[0]:
            best = (key, Path(entry.path))
    return best[1] if best else None


def open_run(kind: str, config: Mapping[str, Any], out: str | os.PathLike[str], name: str | None, resume: bool,
             inputs: list[Any], model_id: str, seed: int, command: list[str] | None = None) -> tuple[Run, bool]:
    """Create a new run folder, or with ``resume`` continue one: ``out/name`` when a name is given, else the
    newest run of this kind made from the same inputs with the same options (a new run if there is none).
    Shared by every job (analysis, interpolation, extrapolation).

    Returns:
        (run, already_complete): a resumed run that had finished is returned as is, with ``True``.

    Raises:
        InputError: the run exists (without ``resume``), is of another kind, was made from other inputs or
            with other options.
    """
    from geovid.runs.store import to_jsonable

    out = Path(out).expanduser()
    if resume:
        path = out / name if name else find_previous(out, kind, inputs, config)
        stored = _read_manifest(path) if path is not None else None
        if path is not None and stored is not None:
            if stored.get("kind") != kind:
                raise InputError(f"run {path.name} is an {stored.get('kind')} run, not an {kind} run")
            old = [str(p) for p in (stored.get("inputs") or [])]
            if old != _abs_inputs(inputs):
                raise InputError(f"run {path.name} was made from {', '.join(old)}; resume it with the same inputs")
            if stored.get("status") == "complete":
                if to_jsonable(stored.get("config") or {}) != to_jsonable(dict(config)):
                    raise InputError(f"run {path.name} is complete but was made with different options; "
                                     "start a new run without --resume")
                return Run(path, stored), True
            return Run.resume(path, config=config), False
        if path is not None and path.exists():
            return Run.resume(path, config=config), False  # reports the damaged manifest
    run = Run.create(out, kind, name=name, inputs=inputs, config=config, model=model_id, seed=seed, command=command)
    return run, False


def save_state(run: Run, name: str, tensors: Mapping[str, torch.Tensor | np.ndarray],
               meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``state/<name>.safetensors`` atomically (tensors, and ``meta`` as JSON in the header)."""
    from safetensors.torch import save_file

    from geovid.runs.store import to_jsonable

    path = run.path / "state" / f"{name}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: (torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v.detach().cpu())
            .contiguous() for k, v in tensors.items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(data, str(tmp), metadata={"json": json.dumps(to_jsonable(dict(meta or {})))})
    os.replace(tmp, path)
    return path


def load_state(run: Run, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """Read ``state/<name>.safetensors``; ``None`` when it is missing or unreadable (the phase is redone)."""
    from safetensors import safe_open

    path = run.path / "state" / f"{name}.safetensors"
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {}).get("json", "{}"))
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except Exception:  # a damaged state file only costs recomputing the phase
        return None
    return tensors, meta


def phase_done(run: Run, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The saved state of ``name`` if the phase finished before (resume), else ``None``."""
    return load_state(run, name) if run.is_done(name) else None


def load_model(model: str | None, device: str | None, dtype: str) -> Any:
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


class CallCounter:
    """Keeps the run's ``network_calls`` equal to calls made before a resume plus the backbone's calls since."""

    def __init__(self, run: Run, backbone: Any) -> None:
        self.run = run
        self.backbone = backbone
        self.base = int(run.manifest.get("network_calls", 0))
        self.start = int(getattr(backbone, "network_calls", 0))

    @property
    def total(self) -> int:
        return self.base + int(getattr(self.backbone, "network_calls", 0)) - self.start

    def update(self) -> None:
        self.run.set_network_calls(self.total)
