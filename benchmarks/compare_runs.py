"""Compare two run folders file by file: do two builds (before/after a change) give the same run?

    python -m benchmarks.compare_runs BEFORE_RUN AFTER_RUN

JSON files are compared value by value (wall-clock fields ignored: ``seconds``, ``timings``, ``created``,
``updated``, ``versions``, ``command``; the runs folder's path is masked), ``.safetensors`` tensor by tensor and
by their metadata, Parquet tables by content, frames, CSV, GIF and MP4 by bytes (the plots are drawn from the
compared tables). Prints each difference and a last line ``NAME: IDENTICAL`` or ``NAME: K differences``; exits 1
when there are differences. Used for the refactor of issue #16 (docs/benchmarks.md, "Refactors").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

IGNORED = {"seconds", "timings", "created", "updated", "versions", "command"}


def _masked(obj: Any, roots: tuple[str, ...]) -> Any:
    if isinstance(obj, dict):
        return {k: _masked(v, roots) for k, v in obj.items() if k not in IGNORED}
    if isinstance(obj, list):
        return [_masked(v, roots) for v in obj]
    if isinstance(obj, str):
        for root in roots:
            obj = obj.replace(root, "<runs>")
    return obj


def _json_diff(x: Any, y: Any, where: str, out: list[str]) -> None:
    if type(x) is not type(y):
        out.append(f"{where}: {x!r} != {y!r}")
    elif isinstance(x, dict):
        for k in sorted(set(x) | set(y)):
            if k not in x or k not in y:
                out.append(f"{where}/{k}: only in {'the second' if k not in x else 'the first'}")
            else:
                _json_diff(x[k], y[k], f"{where}/{k}", out)
    elif isinstance(x, list) and len(x) != len(y):
        out.append(f"{where}: length {len(x)} != {len(y)}")
    elif isinstance(x, list):
        for i, (u, v) in enumerate(zip(x, y)):
            _json_diff(u, v, f"{where}[{i}]", out)
    elif x != y:
        out.append(f"{where}: {x!r} != {y!r}")


def _tensor_diff(x: Path, y: Path, where: str, roots: tuple[str, ...], out: list[str]) -> None:
    import torch

    from geovid.runs.state import read_tensors

    (ta, ma), (tb, mb) = read_tensors(x), read_tensors(y)
    if set(ta) != set(tb):
        out.append(f"{where}: tensors {sorted(ta)} != {sorted(tb)}")
    for k in sorted(set(ta) & set(tb)):
        if ta[k].shape != tb[k].shape or not torch.equal(ta[k], tb[k]):
            out.append(f"{where}:{k}: tensors differ")
    if "json" in ma and "json" in mb:
        _json_diff(_masked(json.loads(ma["json"]), roots), _masked(json.loads(mb["json"]), roots), f"{where}#meta", out)
    else:
        _json_diff(_masked(ma, roots), _masked(mb, roots), f"{where}#meta", out)


def compare_runs(a: Path, b: Path) -> list[str]:
    """The differences between run folders ``a`` and ``b`` (empty: the same run)."""
    import pandas as pd

    roots = (str(a.parent), str(b.parent))
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    out = [f"{p}: only in {'the first' if p in files_a else 'the second'}" for p in sorted(files_a ^ files_b)]
    for rel in sorted(files_a & files_b):
        x, y = a / rel, b / rel
        if rel.suffix == ".json":
            _json_diff(_masked(json.loads(x.read_text()), roots), _masked(json.loads(y.read_text()), roots),
                       str(rel), out)
        elif rel.suffix == ".safetensors":
            _tensor_diff(x, y, str(rel), roots, out)
        elif rel.suffix == ".parquet":
            if not pd.read_parquet(x).equals(pd.read_parquet(y)):
                out.append(f"{rel}: tables differ")
        elif rel.parts[0] != "plots" and rel.suffix in (".png", ".csv", ".gif", ".mp4") and \
                x.read_bytes() != y.read_bytes():
            out.append(f"{rel}: bytes differ")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip())
        return 2
    a, b = (Path(p) for p in argv)
    diffs = compare_runs(a, b)
    for d in diffs:
        print(d)
    print(f"{a.name}: {'IDENTICAL' if not diffs else f'{len(diffs)} differences'}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
