"""Measures of the analysed paths (docs/method.md §7.3): one batched call per path, same draws per frame, table schema."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from analysis import compare, paths
from geovid.geometry.measures import path_measures
from geovid.geometry.metrics import make_metric

D = 64


class RecordingNoisyScore:
    """A stochastic score like the ``contrast`` estimator: its draws depend on the seed and the row index only."""

    calls_per_point = 2

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        g = torch.Generator().manual_seed(self.seed)
        noise = torch.randn(x.shape, generator=g, dtype=torch.float64)
        return -x + 0.1 * noise


def _paths(n: int = 9) -> tuple[dict[str, torch.Tensor], object]:
    g = torch.Generator().manual_seed(0)
    raw = torch.randn(n, D, generator=g, dtype=torch.float64).cumsum(0) + 5
    x, sphere = paths.video_path(raw)
    comp = paths.comparison_paths(x, sphere, seed=0)
    return {"video": x, "optimised": x.clone(), **comp}, sphere


def test_each_path_is_scored_in_one_call_with_all_its_frames() -> None:
    ps, sphere = _paths()
    score = RecordingNoisyScore()
    times = torch.arange(9, dtype=torch.float64) / 8
    seen = []
    m = compare.measure_paths(ps, score, make_metric("density", alpha=1.0), sphere, times,
                              progress=lambda phase, done, total, info: seen.append((phase, done, total)))
    assert score.shapes == [(9, D)] * 5
    assert list(m) == list(ps)
    assert seen[-1] == ("measure", 5, 5)
    assert m["video"].network_calls == 18  # calls_per_point counted


def test_same_points_get_the_same_numbers_on_every_path() -> None:
    """Fairness: identical paths (video and an unchanged 'optimised') must measure identically with a noisy score."""
    ps, sphere = _paths()
    m = compare.measure_paths(ps, RecordingNoisyScore(seed=4), make_metric("density", alpha=1.0), sphere,
                              torch.linspace(0, 1, 9, dtype=torch.float64))
    a, b = m["video"], m["optimised"]
    assert torch.equal(a.residual[1:-1], b.residual[1:-1])
    assert a.log_relative_length == b.log_relative_length and a.mean_residual == b.mean_residual


def test_measures_match_path_measures_and_speed_uses_the_frame_times() -> None:
    ps, sphere = _paths()
    metric = make_metric("density", alpha=0.5)

    def score(x: torch.Tensor) -> torch.Tensor:
        return -x

    times = torch.arange(9, dtype=torch.float64) * 0.25  # 4 fps
    m = compare.measure_paths(ps, score, metric, sphere, times)
    ref = path_measures(ps["line"], score(ps["line"]), metric, sphere, times=times)
    assert m["line"].mean_residual == ref.mean_residual
    step = float((ps["line"][1] - ps["line"][0]).norm())
    assert float(m["line"].speed[0]) == pytest.approx(step / 0.25)


def test_per_frame_table_schema() -> None:
    ps, sphere = _paths(n=7)
    times = [0.0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75]
    m = compare.measure_paths(ps, lambda x: -x, make_metric("density"), sphere, torch.tensor(times))
    table = compare.per_frame_table(m, times)
    assert list(table.columns) == ["path", "frame", "time_s", "residual", "log_density", "speed"]
    assert len(table) == 5 * 7
    assert list(table["path"].unique()) == ["video", "optimised", "perturbed", "smoothed", "line"]
    assert table["frame"].dtype == np.int64
    for col in ("time_s", "residual", "log_density", "speed"):
        assert table[col].dtype == np.float64
    for _, df in table.groupby("path"):
        assert list(df["frame"]) == list(range(7))
        assert list(df["time_s"]) == times
        assert math.isnan(df["residual"].iloc[0]) and math.isnan(df["residual"].iloc[-1])
        assert df["residual"].iloc[1:-1].notna().all() and (df["residual"].iloc[1:-1] > 0).all()
        assert df["log_density"].iloc[0] == 0.0
    stats = compare.path_statistics(m)
    assert stats["video"]["frames"] == 7
    assert stats["video"]["mean_residual"] == pytest.approx(float(table[table.path == "video"].residual.mean()))


def test_per_frame_table_roundtrips_through_parquet(tmp_path) -> None:
    ps, sphere = _paths(n=5)
    m = compare.measure_paths(ps, lambda x: -x, make_metric("density"), sphere, torch.arange(5.0))
    table = compare.per_frame_table(m, torch.arange(5.0))
    table.to_parquet(tmp_path / "t.parquet", index=False)
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert list(back.columns) == list(compare.PER_FRAME_COLUMNS)
    pd.testing.assert_frame_equal(back, table, check_dtype=False)


def test_paths_of_different_lengths_are_refused() -> None:
    ps, sphere = _paths()
    ps["line"] = ps["line"][:5]
    with pytest.raises(ValueError, match="one point per frame"):
        compare.measure_paths(ps, lambda x: -x, make_metric("density"), sphere, torch.arange(9.0))


def test_pca_projection_keeps_planar_paths_exactly() -> None:
    from analysis.plots import pca_2d

    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(D, 2, generator=g, dtype=torch.float64))[0]
    coords = {"a": torch.randn(6, 2, generator=g, dtype=torch.float64),
              "b": torch.randn(4, 2, generator=g, dtype=torch.float64)}
    pts = {k: v @ basis.T + 3.0 for k, v in coords.items()}
    out, frac = pca_2d(pts)
    assert out["a"].shape == (6, 2) and out["b"].shape == (4, 2)
    assert frac.sum() == pytest.approx(1.0)
    # an isometry of the plane: pairwise distances are preserved
    both = np.concatenate([out["a"], out["b"]])
    ref = torch.cat([coords["a"], coords["b"]]).numpy()
    d1 = np.linalg.norm(both[:, None] - both[None], axis=-1)
    d2 = np.linalg.norm(ref[:, None] - ref[None], axis=-1)
    assert np.allclose(d1, d2, atol=1e-9)


def test_curvature_and_force_terms_are_reported() -> None:
    ps, sphere = _paths()
    m = compare.measure_paths(ps, lambda x: -0.3 * x.roll(1, dims=-1), make_metric("density", alpha=1.0), sphere,
                              torch.arange(9.0))
    st = compare.path_statistics(m)
    line, video = st["line"], st["video"]
    assert line["mean_curvature_term"] == pytest.approx(0.0, abs=1e-9)  # a great circle does not bend on the sphere
    assert line["mean_force_term"] == pytest.approx(line["mean_residual"])
    assert video["mean_curvature_term"] > 0 and video["mean_force_term"] > 0
    # the triangle inequality ties the parts to the whole
    assert video["mean_residual"] <= video["mean_curvature_term"] + video["mean_force_term"] + 1e-9
