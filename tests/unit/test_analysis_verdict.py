"""Tests (i)–(iii), geodesic excess and verdict of docs/method.md §7.4 on synthetic numbers."""

from __future__ import annotations

import json
import math

import pytest

from analysis import verdict


def stats(video: float, optimised: float, perturbed: float, smoothed: float, line: float,
          log_len_v: float = 1.0, log_len_o: float = 0.9, log_e_v: float = 2.0, log_e_o: float = 1.0) -> dict:
    r = {"video": video, "optimised": optimised, "perturbed": perturbed, "smoothed": smoothed, "line": line}
    out = {k: {"mean_residual": v, "median_residual": v, "log_relative_length": 0.0, "log_energy": 0.0}
           for k, v in r.items()}
    out["video"].update(log_relative_length=log_len_v, log_energy=log_e_v)
    out["optimised"].update(log_relative_length=log_len_o, log_energy=log_e_o)
    return out


def test_a_geodesic_clip_passes_all_three() -> None:
    t = verdict.evaluate_tests(stats(video=1.0, optimised=0.8, perturbed=5.0, smoothed=1.3, line=4.0))
    assert [t[k]["passed"] for k in ("i", "ii", "iii")] == [True, True, True]
    assert t["i"]["value"] == 1.0 and t["i"]["threshold"] == pytest.approx(2.0)
    assert t["ii"]["threshold"] == pytest.approx(1.6)
    assert t["iii"]["perturbed_ratio"] == pytest.approx(5.0) and t["iii"]["smoothed_ratio"] == pytest.approx(1.3)


def test_a_jittery_clip_fails_i_and_iii() -> None:
    # a shaking clip: large gradient (curvature of the wobble); smoothing removes the wobble and lowers it
    t = verdict.evaluate_tests(stats(video=10.0, optimised=2.0, perturbed=12.0, smoothed=4.0, line=5.0))
    assert t["i"]["passed"] is False and t["ii"]["passed"] is False and t["iii"]["passed"] is False
    assert t["iii"]["smoothed_ratio"] == pytest.approx(0.4)


@pytest.mark.parametrize(("video", "line", "passed"), [(2.0, 4.0, True), (2.0000001, 4.0, False)])
def test_test_i_threshold_is_half_the_line_inclusive(video: float, line: float, passed: bool) -> None:
    t = verdict.evaluate_tests(stats(video=video, optimised=video, perturbed=9, smoothed=9, line=line))
    assert t["i"]["passed"] is passed
    assert verdict.TEST_I_FRACTION == 0.5


@pytest.mark.parametrize(("video", "optimised", "passed"), [(2.0, 1.0, True), (2.01, 1.0, False)])
def test_test_ii_threshold_is_twice_the_optimised(video: float, optimised: float, passed: bool) -> None:
    t = verdict.evaluate_tests(stats(video=video, optimised=optimised, perturbed=9, smoothed=9, line=100))
    assert t["ii"]["passed"] is passed


def test_test_iii_needs_both_ratios_strictly_above_one() -> None:
    assert not verdict.evaluate_tests(stats(1, 1, 2.0, 1.0, 9))["iii"]["passed"]  # smoothed equal: not larger
    assert not verdict.evaluate_tests(stats(1, 1, 0.9, 2.0, 9))["iii"]["passed"]
    assert verdict.evaluate_tests(stats(1, 1, 1.01, 1.01, 9))["iii"]["passed"]


def test_non_finite_numbers_fail_instead_of_passing() -> None:
    t = verdict.evaluate_tests(stats(video=math.nan, optimised=1, perturbed=2, smoothed=2, line=4))
    assert not any(t[k]["passed"] for k in ("i", "ii", "iii"))
    t = verdict.evaluate_tests(stats(video=0.0, optimised=0.0, perturbed=2, smoothed=2, line=4))
    assert t["iii"]["passed"] is False  # ratios to a zero residual are undefined
    assert t["i"]["passed"] is True and t["ii"]["passed"] is True


def test_geodesic_excess_density_and_score() -> None:
    s = stats(1, 1, 2, 2, 4, log_len_v=3.5, log_len_o=3.0, log_e_v=5.0, log_e_o=4.0)
    ex, log_ex, measure = verdict.geodesic_excess(s, "density")
    assert measure == "relative_length" and log_ex == pytest.approx(0.5) and ex == pytest.approx(math.exp(0.5))
    ex, log_ex, measure = verdict.geodesic_excess(s, "score")
    assert measure == "sqrt_energy" and ex == pytest.approx(math.exp(0.5))
    # hundreds of nats apart: stays finite in log space, overflows to inf only in the plain ratio
    ex, log_ex, _ = verdict.geodesic_excess(stats(1, 1, 2, 2, 4, log_len_v=900.0, log_len_o=0.0))
    assert log_ex == 900.0 and ex == math.inf
    assert math.isnan(verdict.geodesic_excess({"video": {}, "optimised": {}})[0])


def test_summary_block_states_thresholds_next_to_numbers_and_is_json() -> None:
    out = verdict.summarise(stats(1.0, 0.8, 5.0, 1.3, 4.0))
    assert set(out) >= {"tests", "geodesic_excess", "log_geodesic_excess", "excess_measure", "verdict", "thresholds"}
    assert out["thresholds"] == {"i_fraction_of_line": 0.5, "ii_factor_of_optimised": 2.0, "iii_min_ratio": 1.0}
    for key in ("i", "ii", "iii"):
        assert isinstance(out["tests"][key]["passed"], bool)
        assert out["tests"][key]["description"] and out["tests"][key]["rule"]
    json.dumps(out, allow_nan=False)  # plain JSON types


def test_verdict_paragraph_follows_the_numbers() -> None:
    good = verdict.summarise(stats(1.0, 0.8, 5.0, 1.3, 4.0))["verdict"]
    assert "all three tests pass" in good and "geodesic excess 1.11" in good  # exp(0.1) = 1.105
    assert good.startswith("The clip's path is 11 % longer than its optimised version")  # the headline first
    bad = verdict.summarise(stats(10.0, 2.0, 12.0, 4.0, 5.0))["verdict"]
    assert "none of the three tests pass" in bad and "smoothing" in bad and "lowers it" in bad
    part = verdict.summarise(stats(1.0, 0.8, 5.0, 0.9, 4.0))["verdict"]
    assert "2 of the three tests pass" in part
    for text in (good, bad, part):
        assert "\n" not in text and len(text) < 1200
        assert text.endswith("defined: docs/method.md §7.4.")  # where the reader finds the definitions


def test_verdict_says_when_the_optimiser_did_not_lower_the_gradient() -> None:
    text = verdict.summarise(stats(1.0, 1.2, 5.0, 1.3, 4.0))["verdict"]
    assert "did not lower the gradient" in text and "brought the gradient" not in text


def test_verdict_names_the_dominant_term_of_the_gradient() -> None:
    s = stats(1.0, 0.8, 5.0, 1.3, 4.0)
    s["video"].update(mean_curvature_term=0.2, mean_force_term=16.0)
    assert "density term of the gradient is 80 times its bending term" in verdict.summarise(s)["verdict"]
    s["video"].update(mean_curvature_term=5.0, mean_force_term=0.01)
    assert "bending term of the gradient is 500 times" in verdict.summarise(s)["verdict"]
    s["video"].update(mean_curvature_term=1.0, mean_force_term=2.0)
    assert "Note that" not in verdict.summarise(s)["verdict"]


def test_huge_excesses_are_written_as_powers_of_ten_from_their_log() -> None:
    assert verdict.excess_text(1.234) == "1.23"
    assert verdict.excess_text(6.94e173, 399.96) == "10^174"
    assert verdict.excess_text(math.inf, 900.0) == "10^391"  # beyond float range, still readable
    assert verdict.excess_text(None) == "n/a" and verdict.excess_text(math.nan, math.nan) == "n/a"
    text = verdict.summarise(stats(10.0, 2.0, 12.0, 4.0, 5.0, log_len_v=900.0, log_len_o=0.0))["verdict"]
    assert "10^391 times as long" in text and "inf" not in text


def test_readable_numbers_and_controls_in_the_summary() -> None:
    clip = stats(1.0, 0.8, 5.0, 1.3, 4.0)  # passes all three tests, excess e^0.1
    shuffled = stats(3.0, 2.0, 3.5, 2.0, 4.0, log_len_v=2.9)  # e^2 = 7.4× its optimised path
    reversed_ = stats(1.05, 0.8, 5.0, 1.3, 4.0, log_len_v=1.005)
    out = verdict.summarise(clip, controls={"shuffled": shuffled, "reversed": reversed_})
    assert out["readable"]["percent_longer_than_optimised"] == pytest.approx(100 * (math.exp(0.1) - 1))
    assert out["readable"]["residual_relative_to_line"] == pytest.approx(0.25)
    sh, rv = out["controls"]["shuffled"], out["controls"]["reversed"]
    assert sh["larger_excess"] and not sh["same_verdict"] and out["controls"]["informative"]
    assert rv["excess_relative_difference"] == pytest.approx(math.expm1(0.005))
    assert rv["residual_relative_difference"] == pytest.approx(0.05) and rv["invariant"]
    assert "shuffled" in out["verdict"] and "tells this clip from its shuffled version" in out["verdict"]
    assert out["verdict"].endswith("docs/method.md §7.4.")
    json.dumps(out, allow_nan=False)
    # A shuffled clip that passes the same tests makes the verdict uninformative, and says so.
    same = verdict.summarise(clip, controls={"shuffled": clip})
    assert not same["controls"]["informative"] and "uninformative" in same["verdict"]
