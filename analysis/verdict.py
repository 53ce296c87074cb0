"""The three tests of docs/method.md §7.4, the geodesic excess, and a plain-language verdict.

docs/method.md §7.4 reads a clip as geodesic when (i) ‖r(γ_v)‖ is near zero, (ii) it is close to ‖r(γ_o)‖, and (iii) the
perturbed and smoothed paths have larger ‖r‖. "Near zero" and "close" need a scale; these are geovid's choices,
stated in summary.json next to the numbers and in docs/analysis.md:

* (i)   mean‖r(γ_v)‖ ≤ ``TEST_I_FRACTION`` (0.5) × mean‖r(γ_l)‖ — near zero on the scale of the straight line
        between the same endpoints (the line's residual is the density force alone, its curvature being zero);
* (ii)  mean‖r(γ_v)‖ ≤ ``TEST_II_FACTOR`` (2) × mean‖r(γ_o)‖ — within a factor 2 of what the solver reaches
        from the clip by normal moves only;
* (iii) mean‖r(γ_δ)‖ / mean‖r(γ_v)‖ > ``TEST_III_MIN_RATIO`` (1) and mean‖r(γ_s)‖ / mean‖r(γ_v)‖ > 1 — both
        perturbing and smoothing make the path less geodesic.

Means are over interior frames (r is undefined at the fixed endpoints). The geodesic excess is L̃(γ_v)/L̃(γ_o)
(docs/method.md §7.4) for the density metric; for the score metric L̃ carries no metric weight, so the excess is
√(E(γ_v)/E(γ_o)), the length ratio of constant-speed paths. Both are computed from logs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: (i): mean‖r(γ_v)‖ must be at most this fraction of mean‖r(γ_l)‖.
TEST_I_FRACTION = 0.5
#: (ii): mean‖r(γ_v)‖ must be at most this multiple of mean‖r(γ_o)‖.
TEST_II_FACTOR = 2.0
#: (iii): mean‖r(γ_δ)‖ and mean‖r(γ_s)‖ must both exceed this multiple of mean‖r(γ_v)‖.
TEST_III_MIN_RATIO = 1.0

TEST_DESCRIPTIONS = {
    "i": "the video's geodesic gradient is near zero: mean |r(video)| <= 0.5 x mean |r(line)|",
    "ii": "the video is close to its optimised path: mean |r(video)| <= 2 x mean |r(optimised)|",
    "iii": "perturbing and smoothing the video both raise the gradient: mean |r(perturbed)| and "
           "mean |r(smoothed)| > mean |r(video)|",
}


def _finite(*values: float) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def _ratio(a: float, b: float) -> float:
    return a / b if _finite(a, b) and b > 0 else math.nan


def evaluate_tests(stats: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """Tests (i)–(iii) from per-path statistics (keys ``video``, ``optimised``, ``perturbed``, ``smoothed``,
    ``line``, each with ``mean_residual``). A test with non-finite inputs fails.

    Returns:
        ``{"i": {...}, "ii": {...}, "iii": {...}}`` with ``passed`` (bool), ``description``, ``rule`` and the
        numbers: (i)/(ii) ``value`` and ``threshold``; (iii) ``perturbed_ratio``, ``smoothed_ratio`` and
        ``threshold``.
    """
    r = {name: float(s.get("mean_residual", math.nan)) for name, s in stats.items()}
    rv, ro, rd, rs, rl = (r.get(k, math.nan) for k in ("video", "optimised", "perturbed", "smoothed", "line"))
    t1 = TEST_I_FRACTION * rl
    t2 = TEST_II_FACTOR * ro
    pr, sr = _ratio(rd, rv), _ratio(rs, rv)
    return {
        "i": {"passed": bool(_finite(rv, t1) and rv <= t1), "description": TEST_DESCRIPTIONS["i"],
              "rule": f"mean|r(video)| <= {TEST_I_FRACTION:g} * mean|r(line)|", "value": rv, "threshold": t1,
              "ratio": _ratio(rv, rl)},
        "ii": {"passed": bool(_finite(rv, t2) and rv <= t2), "description": TEST_DESCRIPTIONS["ii"],
               "rule": f"mean|r(video)| <= {TEST_II_FACTOR:g} * mean|r(optimised)|", "value": rv, "threshold": t2,
               "ratio": _ratio(rv, ro)},
        "iii": {"passed": bool(_finite(pr, sr) and pr > TEST_III_MIN_RATIO and sr > TEST_III_MIN_RATIO),
                "description": TEST_DESCRIPTIONS["iii"],
                "rule": f"mean|r(perturbed)|/mean|r(video)| > {TEST_III_MIN_RATIO:g} and "
                        f"mean|r(smoothed)|/mean|r(video)| > {TEST_III_MIN_RATIO:g}",
                "perturbed_ratio": pr, "smoothed_ratio": sr, "threshold": TEST_III_MIN_RATIO},
    }


def geodesic_excess(stats: Mapping[str, Mapping[str, float]], metric: str = "density") -> tuple[float, float, str]:
    """The geodesic excess of docs/method.md §7.4 and its log.

    Returns:
        ``(excess, log_excess, measure)`` with ``measure`` naming what was compared:
        ``"relative_length"`` (density metric: L̃(γ_v)/L̃(γ_o)) or ``"sqrt_energy"`` (score metric).
    """
    v, o = stats.get("video", {}), stats.get("optimised", {})
    if metric == "score":
        log_ex = 0.5 * (float(v.get("log_energy", math.nan)) - float(o.get("log_energy", math.nan)))
        measure = "sqrt_energy"
    else:
        log_ex = float(v.get("log_relative_length", math.nan)) - float(o.get("log_relative_length", math.nan))
        measure = "relative_length"
    if not math.isfinite(log_ex):
        return math.nan, math.nan, measure
    return (math.exp(log_ex) if log_ex < 700 else math.inf), log_ex, measure


#: Above this excess, texts give the excess as a power of ten (its log is what stays readable: L̃ is a
#: line integral of exp(-α log p), so excesses of 10^100 and more are common with α = 1).
EXCESS_POWER_FROM = 1e4


def excess_text(excess: float | None, log_excess: float | None = None) -> str:
    """The geodesic excess for people: ``1.37``, or ``10^173`` from its natural log when it is large.

    ``log_excess`` (natural log) is used when given and finite, so excesses beyond float range still print.
    """
    if log_excess is None or not _finite(log_excess):
        if excess is None or not _finite(excess):
            return "n/a"
        if excess <= 0:
            return _g(excess)
        log_excess = math.log(excess)
    if log_excess < math.log(EXCESS_POWER_FROM):
        return f"{math.exp(log_excess):.3g}"
    return f"10^{log_excess / math.log(10):.0f}"


def _g(v: float) -> str:
    return f"{v:.3g}" if _finite(v) else "n/a"


#: The verdict's last sentence: where its tests and numbers are defined.
METHOD_NOTE = "How these tests and the excess are defined: docs/method.md §7.4."

#: Above this ratio of the mean norms of the two terms of r(γ_v), the verdict says one of them dominates.
DOMINANCE_RATIO = 10.0


def _balance(video: Mapping[str, Any] | None) -> str:
    """A sentence on which term of r = N[P κ] + α N P s dominates for the video path, if one does."""
    if not video:
        return ""
    k, f = video.get("mean_curvature_term"), video.get("mean_force_term")
    if not (isinstance(k, int | float) and isinstance(f, int | float) and _finite(k, f)) or min(k, f) <= 0:
        return ""
    if f > DOMINANCE_RATIO * k:
        return (f"Note that the density term of the gradient is {f / k:.0f} times its bending term here, so these "
                "tests mostly reflect where the path lies in the model's density rather than how it bends; a "
                "smaller --alpha gives the bending more weight.")
    if k > DOMINANCE_RATIO * f:
        return (f"Note that the bending term of the gradient is {k / f:.0f} times its density term here, so these "
                "tests mostly reflect how the path bends; a larger --alpha gives the density more weight.")
    return ""


def verdict_text(tests: Mapping[str, Mapping[str, Any]], excess: float,
                 video: Mapping[str, Any] | None = None, log_excess: float | None = None) -> str:
    """One paragraph of plain language from the tests and the excess (no new judgement, just the numbers).

    ``video``: the video path's statistics; when given, a sentence says whether the curvature or the
    density term of r dominates (by more than ``DOMINANCE_RATIO``). The last sentence cites docs/method.md §7.4.
    """
    passed = sum(1 for t in tests.values() if t.get("passed") is True)
    if passed == 3:
        head = ("This clip behaves like a geodesic of the image model's density at this noise level: all three "
                "tests pass.")
    elif passed == 0:
        head = "This clip does not behave like a geodesic of the image model's density: none of the three tests pass."
    else:
        head = f"This clip is only partly geodesic: {passed} of the three tests pass."
    t1, t2, t3 = tests["i"], tests["ii"], tests["iii"]
    rv = t1["value"]
    rl = t1["threshold"] / TEST_I_FRACTION if _finite(t1["threshold"]) else math.nan
    ro = t2["threshold"] / TEST_II_FACTOR if _finite(t2["threshold"]) else math.nan
    s1 = (f"Its geodesic gradient (mean |r| = {_g(rv)}, {_g(_ratio(rv, rl))}× that of the straight line between "
          f"its first and last frames, {_g(rl)}) is " + ("small." if t1["passed"] else "not small."))
    if _finite(ro, rv) and ro >= rv:
        s2 = (f"Bending the path only across its direction, the optimiser did not lower the gradient (it ends at "
              f"{_g(ro)}), so by this measure the clip is as close to a geodesic as the optimiser gets within "
              "its budget.")
    else:
        s2 = (f"Bending the path only across its direction, the optimiser brought the gradient to {_g(ro)}, "
              + ("so the clip is already close to the best path through its frames." if t2["passed"] else
                 "so the clip is far (more than twice) from the best path through its frames."))
    pr, sr = t3["perturbed_ratio"], t3["smoothed_ratio"]
    if t3["passed"]:
        s3 = (f"Shaking the frames' points raises the gradient {_g(pr)}-fold and smoothing them over time "
              f"{_g(sr)}-fold, as a geodesic would demand.")
    else:
        worse = []
        if not (_finite(pr) and pr > TEST_III_MIN_RATIO):
            worse.append(f"shaking the frames' points does not raise the gradient (x{_g(pr)})")
        if not (_finite(sr) and sr > TEST_III_MIN_RATIO):
            worse.append(f"smoothing them over time lowers it (x{_g(sr)}), a sign that frame-to-frame wobble, "
                         "not the density, bends the path")
        s3 = "But " + " and ".join(worse) + "." if worse else ""
    if log_excess is None and _finite(excess) and excess > 0:
        log_excess = math.log(excess)
    if log_excess is not None and _finite(log_excess):
        s4 = (f"The clip's path is {percent_text(log_excess)} its optimised version in the model's metric "
              f"(geodesic excess {excess_text(None, log_excess)}; 1 means nothing to gain)")
        s4 += (", i.e. the optimiser lowered the gradient without shortening the path within its budget."
               if log_excess < 0 else ".")
    else:
        s4 = "The geodesic excess could not be computed (non-finite lengths)."
    return " ".join(s for s in (s4, head, s1, s2, s3, _balance(video), METHOD_NOTE) if s)


def readable(stats: Mapping[str, Mapping[str, float]], log_excess: float) -> dict[str, Any]:
    """The headline numbers in units a reader understands: how much longer the clip's path is than the optimised
    one (percent), and the clip's mean ‖r‖ relative to the straight line's (whose ‖r‖ is the density term
    alone, α S = 2/chord under the α rule of docs/method.md §3.7)."""
    rv = float(stats.get("video", {}).get("mean_residual", math.nan))
    rl = float(stats.get("line", {}).get("mean_residual", math.nan))
    longer = 100.0 * math.expm1(log_excess) if _finite(log_excess) and log_excess < 700 else math.nan
    return {"percent_longer_than_optimised": longer, "residual_relative_to_line": _ratio(rv, rl)}


def percent_text(log_excess: float | None, excess: float | None = None) -> str:
    """``37 % longer than``, ``2.1 % shorter than`` or, beyond 10⁴, ``10^12 times as long as``; from the log of
    the excess, or from the excess itself when its log is missing (runs written before it was recorded)."""
    if (log_excess is None or not _finite(log_excess)) and excess is not None and _finite(excess) and excess > 0:
        log_excess = math.log(excess)
    if log_excess is None or not _finite(log_excess):
        return "n/a"
    if log_excess >= math.log(EXCESS_POWER_FROM):
        return f"{excess_text(None, log_excess)} times as long as"
    pct = 100.0 * math.expm1(log_excess)
    size = f"{abs(pct):.2g}" if abs(pct) < 10 else f"{abs(pct):.0f}"
    return f"{size} % {'longer' if pct >= 0 else 'shorter'} than"


def control_text(ctrl: Mapping[str, Any], log_excess: float) -> str:
    """Sentences on the built-in controls (docs/method.md §7.7)."""
    out = []
    sh, rv = ctrl.get("shuffled"), ctrl.get("reversed")
    if sh:
        lc = sh.get("log_geodesic_excess")
        sep = ("so the excess tells this clip from its shuffled version" if sh.get("larger_excess") else
               "so the excess does NOT tell this clip from its shuffled version")
        out.append(f"Control: with its interior frames shuffled, the path is {percent_text(lc)} its optimised one "
                   f"(the clip's: {percent_text(log_excess).removesuffix(' than').removesuffix(' as')}), {sep}.")
        if not ctrl.get("informative", True):
            out.append("The shuffled clip passes the same tests, so the verdict above is uninformative.")
    if rv:
        d1, d2 = rv.get("excess_relative_difference"), rv.get("residual_relative_difference")
        if _finite(d1, d2):
            out.append(f"Played backwards the clip gives the same figures within {100 * max(d1, d2):.0f} % "
                       + ("(invariant, as a geodesic must be)." if rv.get("invariant") else
                          "(more than the 10 % a geodesic test should allow: estimator noise dominates)."))
    return " ".join(out)


def summarise(stats: Mapping[str, Mapping[str, float]], metric: str = "density",
              controls: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None) -> dict[str, Any]:
    """tests, geodesic excess (and its log and measure), readable numbers, controls, verdict and thresholds,
    for summary.json. ``controls``: per control (``shuffled``, ``reversed``) its per-path statistics."""
    from analysis.controls import control_summary

    tests = evaluate_tests(stats)
    excess, log_excess, measure = geodesic_excess(stats, metric)
    ctrl: dict[str, Any] = {}
    if controls:
        per = {}
        for name, cstats in controls.items():
            ex_c, lx_c, _ = geodesic_excess(cstats, metric)
            per[name] = {"geodesic_excess": ex_c, "log_geodesic_excess": lx_c, "tests": evaluate_tests(cstats),
                         "mean_residual_video": float(cstats.get("video", {}).get("mean_residual", math.nan)),
                         "mean_residual_optimised": float(cstats.get("optimised", {}).get("mean_residual",
                                                                                          math.nan))}
        ctrl = control_summary({"log_geodesic_excess": log_excess, "tests": tests,
                                "mean_residual_video": float(stats.get("video", {}).get("mean_residual", math.nan))},
                               per)
    text = verdict_text(tests, excess, stats.get("video"), log_excess)
    if ctrl:
        text = text.replace(" " + METHOD_NOTE, "") + " " + control_text(ctrl, log_excess) + " " + METHOD_NOTE
    return {
        "tests": tests,
        "geodesic_excess": excess,
        "log_geodesic_excess": log_excess,
        "excess_measure": measure,
        "readable": readable(stats, log_excess),
        "controls": ctrl or None,
        "verdict": text,
        "thresholds": {"i_fraction_of_line": TEST_I_FRACTION, "ii_factor_of_optimised": TEST_II_FACTOR,
                       "iii_min_ratio": TEST_III_MIN_RATIO},
    }
