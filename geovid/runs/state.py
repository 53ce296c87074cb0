"""Tensors in run folders: the one safetensors writer and reader, and the resumable state of a phase.

* :func:`write_tensors` / :func:`read_tensors` — a ``.safetensors`` file with string metadata, written atomically
  (:func:`geovid.runs.files.atomic_output`); used for the run's outputs (``points.safetensors``,
  ``path.safetensors``, ...) and for caches.
* :func:`save_state` / :func:`load_state` — ``RUN/state/<phase>.safetensors``: a phase's tensors plus a JSON blob in
  the metadata (key ``json``), which the phased-job runner (:mod:`geovid.runs.jobs`) saves after a phase and hands
  back on resume.

torch, numpy and safetensors are imported when a function is called, not with this module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geovid.runs.files import atomic_output, to_jsonable

if TYPE_CHECKING:
    import numpy as np
    import torch

    from geovid.runs.store import Run

#: A phase's saved state: its tensors and a JSON-able dict.
State = tuple["dict[str, torch.Tensor]", dict[str, Any]]


def _as_tensors(tensors: Mapping[str, torch.Tensor | np.ndarray]) -> dict[str, torch.Tensor]:
    import numpy as np
    import torch

    return {k: (torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v.detach().cpu())
            .contiguous() for k, v in tensors.items()}


def write_tensors(path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor | np.ndarray],
                  metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``tensors`` (moved to the CPU, made contiguous) and string ``metadata`` to ``path`` atomically."""
    from safetensors.torch import save_file

    with atomic_output(path) as tmp:
        save_file(_as_tensors(tensors), str(tmp), metadata=dict(metadata) if metadata is not None else None)
    return Path(path)


def read_tensors(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the string metadata of a ``.safetensors`` file (errors propagate)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = dict(fh.metadata() or {})
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has no __iter__
    return tensors, meta


def state_path(run: Run, name: str) -> Path:
    """Where the state of phase ``name`` lives: ``RUN/state/<name>.safetensors``."""
    return run.path / "state" / f"{name}.safetensors"


def save_state(run: Run, name: str, tensors: Mapping[str, torch.Tensor | np.ndarray],
               meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``state/<name>.safetensors`` atomically (tensors, and ``meta`` as JSON in the header)."""
    return write_tensors(state_path(run, name), tensors, {"json": json.dumps(to_jsonable(dict(meta or {})))})


def load_state(run: Run, name: str) -> State | None:
    """Read ``state/<name>.safetensors``; ``None`` when it is missing or unreadable (the phase is redone)."""
    path = state_path(run, name)
    if not path.is_file():
        return None
    try:
        tensors, meta = read_tensors(path)
        return tensors, json.loads(meta.get("json", "{}"))
    except Exception:  # a damaged state file only costs recomputing the phase
        return None


__all__ = ["State", "load_state", "read_tensors", "save_state", "state_path", "write_tensors"]
