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
