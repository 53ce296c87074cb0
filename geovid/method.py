"""The method document geovid implements, and the reference to it that every run's summary.json carries.

``docs/method.md`` defines every number geovid prints; code, CLI help, verdicts and the TUI cite it as
``docs/method.md §n``. :data:`VERSION` must equal the "method version N" line at the top of that document
(``tests/unit/test_docs_method.py`` checks it); raise both together when the method changes.
"""

from __future__ import annotations

#: The method document, relative to the repository root.
DOC = "docs/method.md"
#: Its version ("method version N" at the top of the document).
VERSION = 3


def reference(section: str) -> dict[str, str | int]:
    """The ``method`` field of a run's summary.json: document, version and the section(s) the run follows.

    Args:
        section: e.g. ``"§7"`` (analysis), ``"§5, §8"`` (interpolation), ``"§6"`` (extrapolation).
    """
    return {"doc": DOC, "version": VERSION, "section": section}
