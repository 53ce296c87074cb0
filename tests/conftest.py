"""Shared test set-up: offline hub, slow/gpu markers."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow_ok = os.environ.get("GEOVID_SLOW") == "1"
    for item in items:
        if "slow" in item.keywords and not slow_ok:
            item.add_marker(pytest.mark.skip(reason="slow; set GEOVID_SLOW=1"))


@pytest.fixture(scope="session")
def tiny_sd_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny random-weight Stable-Diffusion folder, built once per session (end-to-end tests without weights)."""
    from geovid.model.architecture import TINY, build_random_pipeline

    return build_random_pipeline(str(tmp_path_factory.mktemp("tiny-sd") / "model"), TINY, seed=0)


@pytest.fixture(scope="session")
def analysis_model(request: pytest.FixtureRequest) -> str | None:
    """The model end-to-end analysis tests use: the bundled one (``None``) when it is installed, else the tiny one."""
    from geovid.backbones.loader import bundled_model_path

    if (bundled_model_path() / "model_index.json").is_file():
        return None
    return request.getfixturevalue("tiny_sd_model")


@pytest.fixture(scope="module")
def one_thread_private_cache(tmp_path_factory: pytest.TempPathFactory):
    """For modules that run the model: one torch thread (two shared cores; two threads fighting for a core made
    runs several times slower) and a private geovid cache (no inversions reused from other runs)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    mp.setenv("GEOVID_CACHE_DIR", str(tmp_path_factory.mktemp("geovid-cache")))
    yield
    mp.undo()
    torch.set_num_threads(threads)
