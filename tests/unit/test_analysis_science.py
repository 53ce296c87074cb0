"""A reduced science check (benchmarks/science_check.py): 2 seeds × (linear, jitter) + nothing real, slow.

Checks that the check itself works — every clip analysed, rates computed from the rows, the markdown section
written between its markers — not the scientific claims (they are reported as measured in docs/analysis.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks import science_check


@pytest.mark.slow
def test_reduced_science_check(tmp_path: Path, analysis_model: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEOVID_CACHE_DIR", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows, rates, meta = science_check.run_science_check(seeds=2, frames=8, model=analysis_model,
                                                            out=tmp_path / "sci", real=False, max_calls=64,
                                                            steps=20, log=lambda *a: None)
    finally:
        torch.set_num_threads(threads)
    assert [(r["kind"], r["seed"]) for r in rows] == [("linear", 0), ("jitter", 0), ("linear", 1), ("jitter", 1)]
    for r in rows:
        assert r["r_video"] > 0 and r["r_line"] > 0 and isinstance(r["test_iii"], bool)
        assert (Path(r["run"]) / "summary.json").is_file()
    lin = [r for r in rows if r["kind"] == "linear"]
    assert rates["linear"]["test_iii"] == sum(r["test_iii"] for r in lin) / 2
    assert rates["paired"]["pairs"] == 2
    expected = sum(j["r_video"] > v["r_video"] for v, j in zip(rows[0::2], rows[1::2])) / 2
    assert rates["paired"]["jitter_larger_r_video"] == expected
    assert {type(c["held"]) for c in rates["claims"].values()} == {bool}
    assert (tmp_path / "sci" / "science_check.csv").is_file()

    doc = tmp_path / "analysis.md"
    doc.write_text("# title\n\n<!-- science-check:start -->\nstale-table-xyz\n<!-- science-check:end -->\n\ntail\n")
    section = science_check.markdown(rows, rates, meta)
    science_check.write_docs(section, doc)
    text = doc.read_text()
    assert "stale-table-xyz" not in text and text.startswith("# title") and text.rstrip().endswith("tail")
    assert "| linear seed 0 |" in text and "smooth (`linear`)" in text and "as measured" in text
