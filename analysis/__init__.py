"""Video geodesic analysis (docs/method.md §7): path construction, comparisons, verdict, plots.

Modules: ``paths`` (γ_v → γ_o, γ_δ, γ_s, γ_l), ``compare`` (docs/method.md §7.3 measures with one estimator and the same
draws for every path), ``verdict`` (tests (i)–(iii), geodesic excess, plain-language verdict), ``plots`` (PNG),
``run`` (the phased, resumable run: :class:`~analysis.run.AnalysisConfig`, :func:`~analysis.run.run_analysis`,
:func:`~analysis.run.run_batch`). See docs/analysis.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AnalysisConfig", "run_analysis", "run_batch"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import analysis` stays cheap (the TUI probes it at start-up).
    if name in __all__:
        from analysis import run

        return getattr(run, name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
