"""docs/python.md runs: its ```python blocks, in order, in one namespace, in an empty folder;
and it documents every name the top-level package exports.

Blocks fenced ```python no-run are not run. They are for what cannot run in a test's minutes
on a CPU (training a large transformer, a server in its own process); today the page has none:
everything, training included, runs on the bundled static model, small models and a tiny corpus.
"""

from __future__ import annotations

import linecache
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

import densekit

PAGE = Path(__file__).resolve().parents[1] / "docs" / "python.md"

_OPENING = re.compile(r"^(?P<fence>```+|~~~+)[ \t]*(?P<info>[^\n`]*)$")
_INLINE_CODE = re.compile(r"`([^`]+)`")  # a span may wrap a line
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Block:
    line: int  # of the block's first code line, 1-based
    info: str  # the fence's info string: "python", "python no-run", "bash", ...
    code: str

    @property
    def runs(self) -> bool:
        words = self.info.split()
        return words[:1] == ["python"] and "no-run" not in words[1:]


def blocks(text: str) -> list[Block]:
    """Every fenced block of ``text``, in order; an unclosed fence is an error."""
    found = []
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        opening = _OPENING.match(lines[number])
        number += 1
        if opening is None:
            continue
        fence, start, body = opening["fence"], number, []
        while number < len(lines) and lines[number].rstrip() != fence:
            body.append(lines[number])
            number += 1
        if number == len(lines):
            raise AssertionError(f"line {start}: the {fence} block is never closed")
        number += 1
        found.append(Block(start + 1, opening["info"].strip(), "\n".join(body) + "\n"))
    return found


def prose(text: str) -> str:
    """The page without its fenced blocks."""
    kept, inside = [], None
    for line in text.splitlines():
        opening = _OPENING.match(line)
        if inside is None and opening is not None:
            inside = opening["fence"]
        elif inside is not None and line.rstrip() == inside:
            inside = None
        elif inside is None:
            kept.append(line)
    return "\n".join(kept)


def run_blocks(text: str, name: str) -> None:
    """Run the page's runnable blocks in one namespace; the first that raises fails the test,
    named by its line, with a traceback whose lines are the page's."""
    namespace: dict[str, object] = {"__name__": "__docs__"}
    # A traceback shows the page's lines: the code is padded to its place on the page.
    linecache.cache[name] = (len(text), None, text.splitlines(keepends=True), name)
    try:
        for block in blocks(text):
            if not block.runs:
                continue
            source = "\n" * (block.line - 1) + block.code
            try:
                exec(compile(source, name, "exec"), namespace)
            except Exception as exc:
                trace = "".join(traceback.format_exception(exc)[1:])  # past the harness
                failure = f"{name}: the block at line {block.line} raised "
                failure += f"{type(exc).__name__}: {exc}\n{trace}"
                break
        else:
            return
    finally:
        linecache.cache.pop(name, None)
    pytest.fail(failure, pytrace=False)


def documented_names(text: str) -> set[str]:
    """Identifiers in the page's inline code (outside blocks): ``densekit.open(dir)`` counts
    ``densekit`` and ``open``."""
    spans = _INLINE_CODE.findall(prose(text))
    return {name for span in spans for name in _IDENTIFIER.findall(span)}


def code_names(text: str) -> set[str]:
    """Identifiers in the page's runnable blocks."""
    code = "\n".join(block.code for block in blocks(text) if block.runs)
    return set(_IDENTIFIER.findall(code))


@pytest.mark.slow
def test_every_python_block_of_the_page_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_blocks(PAGE.read_text(encoding="utf-8"), "docs/python.md")


def test_every_public_name_is_described_on_the_page() -> None:
    missing = set(densekit.__all__) - documented_names(PAGE.read_text(encoding="utf-8"))
    assert missing == set(), f"docs/python.md does not describe: {sorted(missing)}"


def test_every_public_name_is_used_in_a_block_that_runs() -> None:
    missing = set(densekit.__all__) - code_names(PAGE.read_text(encoding="utf-8"))
    assert missing == set(), f"no runnable example on docs/python.md uses: {sorted(missing)}"


PAGE_WITH_A_BROKEN_BLOCK = """\
# A page

```python
value = 41
```

Prose between.

```python no-run
raise RuntimeError("never run")
```

```bash
exit 1
```

```python
value += 1
assert value == 43, value
```
"""


def test_blocks_are_read_in_order_with_their_lines() -> None:
    found = blocks(PAGE_WITH_A_BROKEN_BLOCK)
    assert [(b.line, b.info, b.runs) for b in found] == [
        (4, "python", True),
        (10, "python no-run", False),
        (14, "bash", False),
        (18, "python", True),
    ]
    assert found[0].code == "value = 41\n"


def test_a_raising_block_fails_naming_its_line() -> None:
    with pytest.raises(pytest.fail.Exception) as failed:
        run_blocks(PAGE_WITH_A_BROKEN_BLOCK, "page.md")
    message = str(failed.value)
    assert "page.md: the block at line 18 raised AssertionError: 42" in message
    assert 'File "page.md", line 19' in message  # the page's own line in the traceback
    assert "assert value == 43, value" in message  # and its text
    assert "never run" not in message


def test_a_missing_name_is_found() -> None:
    page = "Use `densekit.open(dir)` and `Client`.\n\n```python\nsearch = 1\n```\n"
    assert {"open", "Client", "densekit", "dir"} <= documented_names(page)
    assert "search" not in documented_names(page)
    assert code_names(page) == {"search"}


def test_an_unclosed_block_is_an_error() -> None:
    with pytest.raises(AssertionError, match="line 1: the ``` block is never closed"):
        blocks("```python\nx = 1\n")
