"""Default torch threads: the idle cores now, not the 1-minute load average."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from geovid.cli.common import busy_cores, set_threads
from geovid.errors import InputError


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/stat is Linux's")
def test_a_spinning_process_counts_as_a_busy_core() -> None:
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert busy_cores() >= 1.0
    finally:
        spin.kill()
        spin.wait()


def test_threads_option_is_checked() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
        with pytest.raises(InputError, match="--threads must be at least 1"):
            set_threads(0)
    finally:
        torch.set_num_threads(before)
