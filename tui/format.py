"""Text for tables and panels: short, deterministic renderings of run records (no clocks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.verdict import excess_text
from geovid.runs.catalog import RunRecord

KIND_SHORT = {"analysis": "analysis", "interpolation": "interp", "extrapolation": "extrap", "unknown": "?"}
STATUS_STYLE = {"complete": "green", "running": "cyan", "interrupted": "yellow", "failed": "red",
                "damaged": "red"}


def num(value: Any, digits: int = 3) -> str:
    """A number in ``digits`` significant figures, or '–' for missing values."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def created_text(record: RunRecord, short: bool = False) -> str:
    """``YYYY-MM-DD HH:MM`` as written in the manifest (its own offset; no local-clock conversion)."""
    when = record.created_at
    if when is None:
        return "–"
    return when.strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M")


def inputs_text(record: RunRecord) -> str:
    """Input file names (not full paths), comma-separated."""
    return ", ".join(Path(p).name for p in record.inputs) or "–"


def status_text(record: RunRecord) -> str:
    """Status word, with a warning mark when the run has problems."""
    return record.status + (" ⚠" if record.problems and record.status != "damaged" else "")


def result_text(record: RunRecord, narrow: bool = False) -> str:
    """The key numbers in one short cell: excess and tests (analysis), PPL/PDV (interpolation), …

    ``narrow`` gives at most about 15 characters (for 80-column terminals).
    """
    n = record.numbers
    if record.status == "failed":
        return "error: " + (record.error or "?")
    if record.kind == "analysis" and n:
        parts = []
        if "excess" in n:
            parts.append(f"excess {excess_text(n['excess'], n.get('log_excess'))}")
        if "tests_total" in n:
            tests = f"{n.get('tests_passed', 0)}/{n['tests_total']}"
            parts.append(tests if narrow else f"tests {tests}")
        return (" " if narrow else " · ").join(parts)
    if record.kind == "interpolation" and n:
        if narrow:
            return f"PPL {num(n.get('ppl'), 2)}/{num(n.get('pdv'), 2)}"
        return f"PPL {num(n.get('ppl'))} PDV {num(n.get('pdv'))}"
    if record.kind == "extrapolation" and n:
        sep = " " if narrow else " · "
        return f"{num(n.get('steps'))} steps{sep}{num(n.get('frames_decoded'))} fr{'' if narrow else 'ames'}"
    if record.status == "running":
        done = (record.manifest or {}).get("phases_done") or []
        return "after " + str(done[-1]) if done else "starting"
    if record.problems:
        return record.problems[0]
    return ""


def search_text(record: RunRecord) -> str:
    """Everything the filter box matches against, lower-cased."""
    parts = [record.name, record.kind, record.status, " ".join(record.inputs), result_text(record),
             " ".join(record.problems), record.error or "", created_text(record)]
    return " ".join(parts).lower()


def matches(record: RunRecord, query: str) -> bool:
    """True when every word of ``query`` occurs in the record's searchable text."""
    hay = search_text(record)
    return all(word in hay for word in query.lower().split())


def compare_rows(a: RunRecord, b: RunRecord) -> list[tuple[str, str, str]]:
    """(label, A, B) rows for the compare screen: key numbers, then config values that differ."""
    rows: list[tuple[str, str, str]] = [
        ("kind", a.kind, b.kind), ("status", a.status, b.status),
        ("inputs", inputs_text(a), inputs_text(b)),
    ]
    keys = list(dict.fromkeys([*a.numbers, *b.numbers]))
    rows += [(k.replace("_", " "), num(a.numbers.get(k)), num(b.numbers.get(k))) for k in keys]
    ca, cb = a.config, b.config
    for key in sorted(set(ca) | set(cb)):
        va, vb = ca.get(key), cb.get(key)
        if va != vb:
            rows.append((key, num(va), num(vb)))
    ma, mb = (a.manifest or {}).get("network_calls"), (b.manifest or {}).get("network_calls")
    if ma is not None or mb is not None:
        rows.append(("network calls", num(ma), num(mb)))
    return rows
