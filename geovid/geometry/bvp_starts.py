"""Several starts of the geovid solver in lockstep (docs/method.md §5.4): each start is a generator that yields the
points whose scores it needs and receives them; every round, one batched score call serves all pending requests.
A start that fails is recorded and dropped; the others go on."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import torch

from geovid.errors import SolverError
from geovid.geometry.bvp_core import CountingScore


@dataclass
class _StartRun:
    """One start of a geovid solve: its outcome, filled in by ``_geovid_run`` (see ``solve_geovid``)."""

    kind: str  # "initial", "candidate", "bend" or "saddle-break"
    calls: int = 0  # network calls this start asked for (endpoint scores included, shared by all starts)
    path: torch.Tensor | None = None
    scores: torch.Tensor | None = None
    iterations: int = 0
    converged: bool = False
    critical: bool = False  # the initial path already met the residual test: a critical point of the length
    initial_residual: float = math.nan
    initial_objective: float = math.nan
    last_residual: float = math.nan
    last_objective: float = math.inf
    objective: float = math.inf  # log L̃ (or log E) of the returned path, the selection criterion
    history: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # an extra start that failed (e.g. non-finite scores where it began) is dropped

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind, "calls": self.calls, "iterations": self.iterations, "converged": self.converged,
                "critical": self.critical, "initial_objective": _finite_or_none(self.initial_objective),
                "objective": _finite_or_none(self.objective), "initial_residual": _finite_or_none(self.initial_residual),
                "final_residual": _finite_or_none(self.last_residual), **({"error": self.error} if self.error else {})}


def _finite_or_none(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _guarded(gen: Generator[torch.Tensor, torch.Tensor, None], run: _StartRun
             ) -> Generator[torch.Tensor, torch.Tensor, None]:
    """An extra start whose solve fails (non-finite scores where it began, divergence) is recorded and dropped;
    the other starts go on."""
    try:
        yield from gen
    except SolverError as exc:
        run.error, run.objective = str(exc), math.inf


def _lockstep(gens: list[Generator[torch.Tensor, torch.Tensor, None]], counter: CountingScore,
              after_round: Callable[[int], list[Generator[torch.Tensor, torch.Tensor, None]]] | None = None) -> None:
    """Run the starts' generators together: every round, one batched score call for all pending requests.

    ``after_round(round)`` may return new generators (e.g. starts that break a critical point), which join the
    next round.
    """
    pending: dict[int, torch.Tensor] = {}
    live: dict[int, Generator[torch.Tensor, torch.Tensor, None]] = {}

    def start(g: Generator[torch.Tensor, torch.Tensor, None]) -> None:
        i = len(live) + len(done)
        try:
            pending[i] = next(g)
            live[i] = g
        except StopIteration:
            done.add(i)

    done: set[int] = set()
    for g in gens:
        start(g)
    rounds = 0
    while pending:
        keys = list(pending)
        batch = torch.cat([pending[i] for i in keys])
        scores = counter(batch) if batch.shape[0] else batch.new_zeros(batch.shape)
        offset = 0
        for i in keys:
            m = pending[i].shape[0]
            try:
                pending[i] = live[i].send(scores[offset:offset + m])
            except StopIteration:
                del pending[i], live[i]
                done.add(i)
            offset += m
        rounds += 1
        if after_round is not None:
            for g in after_round(rounds):
                start(g)
