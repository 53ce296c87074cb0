"""The method lives in the repository: docs/method.md exists with its version and sections, every citation of it
names a section it has, and no file of the project names a path outside the repository (issue 17).

Scans every file git would commit (tracked, plus untracked files that are not ignored), text files only.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
METHOD = ROOT / "docs" / "method.md"

# Built from pieces so that this file does not match its own patterns.
_UP = ".." + "/"
#: The external specification's citation forms (its upper-case name followed by a section sign, also across a
#: line break, or by ".md") and the notes file that docs/method.md replaced.
_OLD_CITATION = re.compile("METHOD" + r"(?:\s+§|\.md)|" + "method" + "-notes")
_OUTSIDE = (_UP + "shared", "/work" + "/shared", "/work" + "/main")

#: A citation: ``docs/method.md`` (or ``method.md`` inside docs/) followed by one or more §n / §n.m, e.g.
#: "docs/method.md §7.3", "docs/method.md §5, §8", "docs/method.md §1–§2", "docs/method.md §3 / §4".
_CITATION = re.compile(r"(?:docs/)?method\.md((?:\s*(?:,|;|/|–|-|and|or)?\s*§\d+(?:\.\d+)*)+)")
_SECTION = re.compile(r"§(\d+(?:\.\d+)*)")
_HEADING = re.compile(r"^#{2,4} §(\d+(?:\.\d+)*)\s", re.MULTILINE)
#: A run summary's ``method`` field: ``reference("§5, §8")`` / ``method_reference("§7")`` in the code.
_SUMMARY_REF = re.compile(r"reference\(\s*\"(§[^\"]*)\"\s*\)")
_MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_UP_PATH = re.compile(r"(?<![\w./-])((?:\.\./)+[\w.\-/]*)")


@cache
def _project_files() -> tuple[Path, ...]:
    """Files git would commit, relative to the repository root (missing ones, e.g. deleted, left out)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout (or git is missing): nothing to scan")
    names = sorted({n for n in out.decode("utf-8", "surrogateescape").split("\0") if n})
    return tuple(Path(n) for n in names if (ROOT / n).is_file())


@cache
def _text(rel: Path) -> str | None:
    """The file's text, or None for binary files (a NUL byte in the first 8 KiB)."""
    data = (ROOT / rel).read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", "replace")


def _text_files() -> list[tuple[Path, str]]:
    return [(rel, t) for rel in _project_files() if (t := _text(rel)) is not None]


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


@cache
def _sections() -> frozenset[str]:
    return frozenset(_HEADING.findall(METHOD.read_text(encoding="utf-8")))


def test_method_doc_has_its_version_and_the_stable_top_level_sections() -> None:
    from geovid import method

    text = METHOD.read_text(encoding="utf-8")
    head = "\n".join(text.splitlines()[:5])
    found = re.search(r"method version (\d+)", head)
    assert found, "docs/method.md must state 'method version N' in its first lines"
    assert int(found.group(1)) == method.VERSION, "geovid.method.VERSION differs from docs/method.md's version"
    assert method.DOC == "docs/method.md"
    top = re.findall(r"^## §(\d+)\s", text, re.MULTILINE)
    assert top == [str(i) for i in range(1, 9)], f"top-level sections must be §1…§8 in order, got {top}"
    numbers = _HEADING.findall(text)
    assert len(numbers) == len(set(numbers)), "a section number repeats"
    for sub in (n for n in numbers if "." in n):
        assert sub.split(".")[0] in top, f"§{sub} has no parent section"


def test_every_citation_names_a_section_the_method_doc_has() -> None:
    have = _sections()
    bad = []
    for rel, text in _text_files():
        for m in _CITATION.finditer(text):
            for sec in _SECTION.findall(m.group(1)):
                if sec not in have:
                    bad.append(f"{rel}:{_line(text, m.start())}: cites §{sec}")
        for m in _SUMMARY_REF.finditer(text):
            for sec in _SECTION.findall(m.group(1)):
                if sec not in have:
                    bad.append(f"{rel}:{_line(text, m.start())}: summary.json method field cites §{sec}")
    # Inside the document every §n it mentions must exist too.
    own = METHOD.read_text(encoding="utf-8")
    for m in _SECTION.finditer(own):
        if m.group(1) not in have:
            bad.append(f"docs/method.md:{_line(own, m.start())}: mentions §{m.group(1)}")
    assert not bad, "citations of sections docs/method.md does not have:\n" + "\n".join(bad)


def test_the_old_external_method_document_is_no_longer_cited() -> None:
    bad = [f"{rel}:{_line(text, m.start())}: {m.group(0)!r}" for rel, text in _text_files()
           for m in _OLD_CITATION.finditer(text)]
    assert not bad, "cite docs/method.md §n instead:\n" + "\n".join(bad)


def test_no_file_names_a_path_outside_the_repository() -> None:
    bad = []
    for rel, text in _text_files():
        for s in _OUTSIDE:
            if s in text:
                bad.append(f"{rel}:{_line(text, text.find(s))}: {s!r}")
        for m in _UP_PATH.finditer(text):
            target = ((ROOT / rel).parent / m.group(1)).resolve()
            if not target.is_relative_to(ROOT):
                bad.append(f"{rel}:{_line(text, m.start())}: {m.group(1)!r} leaves the repository")
    assert not bad, "paths outside the repository (a fresh clone does not have them):\n" + "\n".join(bad)


def test_markdown_links_stay_inside_the_repository_and_exist() -> None:
    bad = []
    for rel, text in _text_files():
        if rel.suffix.lower() != ".md":
            continue
        for m in _MD_LINK.finditer(text):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
                continue  # URLs, mailto:, anchors
            path = ((ROOT / rel).parent / target.split("#", 1)[0]).resolve()
            if not path.is_relative_to(ROOT):
                bad.append(f"{rel}:{_line(text, m.start())}: link {target!r} leaves the repository")
            elif not path.exists():
                bad.append(f"{rel}:{_line(text, m.start())}: link {target!r} points to nothing")
    assert not bad, "\n".join(bad)


def test_readme_links_the_method_in_its_first_paragraph() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first = text.split("\n## ", 1)[0]
    paragraphs = [p for p in re.split(r"\n\s*\n", first) if p.strip() and not p.lstrip().startswith(("#", "**"))]
    assert paragraphs and "](docs/method.md)" in paragraphs[0], "README's first paragraph must link docs/method.md"


def test_the_checks_catch_what_they_are_for() -> None:
    """The patterns themselves: citations with ranges and lists, escaping paths, markdown links."""
    cites = [s for m in _CITATION.finditer("see docs/method.md §1–§2 and docs/method.md §5, §8; method.md §7.3")
             for s in _SECTION.findall(m.group(1))]
    assert cites == ["1", "2", "5", "8", "7.3"]
    assert [m.group(1) for m in _UP_PATH.finditer(f"see `{_UP}{_UP}x/y.md` or ./a/{_UP}b")] == [f"{_UP}{_UP}x/y.md"]
    assert [m.group(1) for m in _MD_LINK.finditer("[a](run.md#x) ![b](p.png) [c](https://e.org)")] == [
        "run.md#x", "p.png", "https://e.org"]
    assert _SUMMARY_REF.findall('"method": method_reference("§5, §8"),') == ["§5, §8"]
    old = ["METHOD" + " §7", "METHOD" + "\n§7", "METHOD" + ".md", "docs/method" + "-notes.md"]
    assert [bool(_OLD_CITATION.search(s)) for s in [*old, "INTERP_METHODS", "METHOD_NOTE"]] == [True] * 4 + [False] * 2
