"""The figures in the docs come from the committed results files, never typed twice.

A document holds a generated block between two markers naming its source file:

    <!-- figures: benchmarks/figures/results.md -->
    ...the file's content, as it is...
    <!-- /figures -->

``publish`` rewrites every block of a document from its file (the load runner calls it with
``--publish``, the long-sale benchmark after each run); ``stale`` says which blocks differ from
their files (tests/test_docs_figures.py keeps the two from disagreeing).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = (ROOT / "README.md", ROOT / "benchmarks" / "README.md")
BLOCK = re.compile(r"(<!-- figures: (?P<source>\S+) -->\n)(?P<body>.*?)(<!-- /figures -->)", re.S)


def blocks(document: Path) -> list[tuple[str, str]]:
    """(source file, the block's text) for each generated block of ``document``."""
    return [(m.group("source"), m.group("body")) for m in BLOCK.finditer(document.read_text())]


def publish(document: Path) -> int:
    """Rewrite each block of ``document`` from its source file; how many changed."""
    text = document.read_text()
    changed = 0

    def fill(m: re.Match[str]) -> str:
        nonlocal changed
        body = (ROOT / m.group("source")).read_text()
        changed += body != m.group("body")
        return m.group(1) + body + m.group(4)

    document.write_text(BLOCK.sub(fill, text))
    return changed


def stale(document: Path) -> list[str]:
    """The sources whose block in ``document`` is not the file's content."""
    return [source for source, body in blocks(document) if (ROOT / source).read_text() != body]


if __name__ == "__main__":  # python -m benchmarks.docs: refresh every block from its file
    for path in DOCUMENTS:
        print(f"{path.relative_to(ROOT)}: {publish(path)} block(s) refreshed")
