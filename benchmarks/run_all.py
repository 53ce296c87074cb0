"""Run every benchmark (or the named ones) and assemble docs/benchmarks.md.

Usage: python -m benchmarks.run_all [bvp_efficiency accuracy decoding end_to_end gpu] [--quick] [--assemble-only]

Each benchmark writes benchmarks/results/<name>.md; this script adds the machine, date and command.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
DOC = HERE.parent / "docs" / "benchmarks.md"

SECTIONS = {
    "bvp_efficiency": ("1. BVP efficiency: geovid vs the reference schedule (docs/method.md §5)", []),
    "end_to_end": ("2. End to end on this CPU", []),
    "accuracy": ("3. Accuracy against the grid reference (2-D mixtures)", []),
    "decoding": ("4. Decoding: guarded frame selection vs plain OpenCV", []),
    "gpu": ("5. GPU (SD2-shaped pipeline, random weights)", []),
    "multistart": ("6. Multi-start BVP (global starts, docs/method.md §5)", []),
    "batch": ("7. Batch engines: local vs Ray, and clips per GPU-hour", []),
}


def machine() -> str:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
            f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"CUDA: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    names = [a for a in argv if not a.startswith("--")] or list(SECTIONS)
    if "--assemble-only" in argv:
        names = []
    for name in names:
        extra = ["--quick"] if quick and name == "bvp_efficiency" else []
        print(f"== {name}", flush=True)
        out = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *extra], capture_output=True, text=True)
        if name == "decoding" and out.returncode == 0:
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / "decoding.md").write_text("```\n" + out.stdout.strip() + "\n```\n")
        print(out.stdout[-3000:], out.stderr[-2000:], flush=True)
    stamp = dt.date.today().isoformat()
    parts = [
        "# Benchmarks",
        "",
        f"Machine: {machine()}.  ",
        f"Assembled {stamp} by `python -m benchmarks.run_all` (each section: `python -m benchmarks.<name>`).",
        "Network calls are per-sample score evaluations. Speed targets live here, never in tests.",
        "",
    ]
    notes = (HERE / "notes.md").read_text() if (HERE / "notes.md").exists() else ""
    for name, (title, _) in SECTIONS.items():
        parts += [f"## {title}", ""]
        f = RESULTS / f"{name}.md"
        parts.append(f.read_text() if f.exists() else "_not run on this machine_\n")
    if notes:
        parts += ["", notes]
    DOC.write_text("\n".join(parts))
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main(sys.argv[1:])
