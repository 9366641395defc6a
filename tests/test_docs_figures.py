"""The docs' figures are the committed results files (benchmarks/docs.py): a table in README.md
or benchmarks/README.md between ``<!-- figures: FILE -->`` markers is FILE's content, so a
figure cannot be written one way here and another there."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import docs


@pytest.mark.parametrize("document", docs.DOCUMENTS, ids=lambda path: str(path.relative_to(docs.ROOT)))
def test_every_generated_table_is_its_results_file(document: Path) -> None:
    assert not docs.stale(document), "refresh them: .venv/bin/python -m benchmarks.docs"


def test_the_readme_shows_the_load_run_and_the_long_sale() -> None:
    sources = {source for source, _ in docs.blocks(docs.ROOT / "README.md")}
    assert {"benchmarks/figures/results.md", "benchmarks/figures/longsale.md"} <= sources
