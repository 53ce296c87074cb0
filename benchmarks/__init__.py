"""geovid benchmarks: ``python -m benchmarks.run_all`` runs them all and assembles docs/benchmarks.md."""

from __future__ import annotations


def weights_fingerprint(model: str | None = None) -> str:
    """First 12 hex digits of the SHA-256 of the model's UNet weights (which weights produced a table)."""
    import hashlib

    from geovid.backbones.loader import resolve_model

    folder = resolve_model(model) / "unet"
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    h = hashlib.sha256()
    for f in files[:1]:
        h.update(f.read_bytes())
    return h.hexdigest()[:12]
