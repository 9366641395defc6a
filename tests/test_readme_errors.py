"""The README's error table against the errors the code can answer: none missing, none stale.

The codes are found in the source, not listed again here: every ``HTTPError(status, "code")``
(or a call of the same shape), every ``json_response({"error": "code", ...}, status)``, and the
hold states a ``HoldUnavailable`` answers as ``hold_<state>`` (apps/errors.py builds that one).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ticketsys.domain.models import HoldState

ROOT = Path(__file__).resolve().parent.parent
CODE = re.compile(r"[a-z][a-z_]+")


def answered_by_the_code() -> set[tuple[int, str]]:
    found: set[tuple[int, str]] = set()
    for path in (ROOT / "ticketsys").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or len(node.args) < 2:
                continue
            first, second = node.args[0], node.args[1]
            status = _status(first)
            if status and isinstance(second, ast.Constant) and CODE.fullmatch(str(second.value)):
                found.add((status, str(second.value)))
            status = _status(second)
            if status and isinstance(first, ast.Dict):
                for key, value in zip(first.keys, first.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "error"
                        and isinstance(value, ast.Constant)
                    ):
                        found.add((status, str(value.value)))
    # apps/errors.py answers HoldUnavailable as f"hold_{state}": a hold that is no longer held
    found |= {(409, f"hold_{state.value}") for state in HoldState if state is not HoldState.HELD}
    return found


def _status(node: ast.expr) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int and 400 <= node.value < 600:
        return node.value
    return None


def documented() -> set[tuple[int, str]]:
    """(status, code) of each row of the README's error table (a row may name several of each)."""
    pairs: set[tuple[int, str]] = set()
    for line in (ROOT / "README.md").read_text().splitlines():
        row = re.match(r"^\| ([0-9]{3}(?:, [0-9]{3})*) \| (`[a-z_]+`(?:, `[a-z_]+`)*) \|", line)
        if row:
            statuses = [int(s) for s in row.group(1).split(", ")]
            codes = re.findall(r"`([a-z_]+)`", row.group(2))
            pairs |= {(status, code) for status in statuses for code in codes}
    return pairs


def test_every_error_the_code_answers_is_in_the_readme() -> None:
    table = documented()
    missing = {(status, code) for status, code in answered_by_the_code() if (status, code) not in table}
    assert not missing, f"add to README.md's error table: {sorted(missing)}"


def test_every_error_in_the_readme_is_one_the_code_answers() -> None:
    answered = answered_by_the_code()
    codes = {code for _, code in answered}
    # a row naming two statuses (414, 431) pairs each code with both: the code must exist
    stale = {(status, code) for status, code in documented() if code not in codes}
    assert not stale, f"README.md's error table names errors the code never answers: {sorted(stale)}"
    assert len(documented()) >= 25  # the table was found and read
