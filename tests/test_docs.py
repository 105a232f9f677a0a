"""The README and the reference pages in docs/: links lead somewhere, the README stays short,
and every command the CLI page names is one the `densekit` parser knows."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from densekit.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLI_PAGE = ROOT / "docs" / "cli.md"
README_MAX_LINES = 200

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_COMMAND = re.compile(r"\bdensekit ([a-z][a-z0-9-]*)")


def pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def prose(text: str) -> str:
    """The text outside code: a `[x](y)` in a code block or span is not a link."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def code(text: str) -> str:
    """Only the code: fenced blocks and inline spans, where command lines are written."""
    blocks = [match.group(0) for match in _FENCE.finditer(text)]
    spans = _INLINE_CODE.findall(_FENCE.sub("", text))
    return "\n".join(blocks + spans)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", _FENCE.sub("", path.read_text()), re.M)
    return {slug(heading) for heading in headings}


def broken_links(path: Path) -> list[str]:
    """Each relative link of ``path`` whose file (or heading anchor) does not exist."""
    broken = []
    for target in _LINK.findall(prose(path.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{path.name}: {target} (no file {file_part})")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{path.name}: {target} (no heading #{anchor} in {linked.name})")
    return broken


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def named_commands(path: Path) -> set[str]:
    return set(_COMMAND.findall(code(path.read_text(encoding="utf-8"))))


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.name)
def test_relative_links_lead_to_files_that_exist(page: Path) -> None:
    assert broken_links(page) == []


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_every_command_on_the_cli_page_is_a_real_subcommand() -> None:
    named = named_commands(CLI_PAGE)
    assert named, "docs/cli.md names no `densekit COMMAND`"
    unknown = named - set(subcommands(build_parser()))
    assert unknown == set(), f"docs/cli.md names commands the parser lacks: {sorted(unknown)}"


def test_the_cli_page_names_every_subcommand() -> None:
    missing = set(subcommands(build_parser())) - named_commands(CLI_PAGE)
    assert missing == set(), f"docs/cli.md does not describe: {sorted(missing)}"


def test_the_cli_page_names_every_pipeline_action() -> None:
    actions = subcommands(subcommands(build_parser())["pipeline"])
    text = code(CLI_PAGE.read_text(encoding="utf-8"))
    assert {a for a in actions if f"densekit pipeline {a}" not in text} == set()


def test_a_missing_file_or_heading_is_reported(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# A heading\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#a-heading) [web](https://example.org/x) [self](#top)\n"
        "# Top\n"
        "[gone](missing.md) [no anchor](there.md#elsewhere)\n"
        "`[in code](missing-too.md)`\n"
        "```\n[in a block](missing-three.md)\n```\n"
    )
    assert broken_links(page) == [
        "page.md: missing.md (no file missing.md)",
        "page.md: there.md#elsewhere (no heading #elsewhere in there.md)",
    ]


def test_commands_are_read_from_code_only(tmp_path: Path) -> None:
    page = tmp_path / "cli.md"
    page.write_text(
        "densekit has no model here.\n"
        "`densekit search DIR` and `densekit serch DIR`\n"
        "```bash\ndensekit index corpus.jsonl --out build/c\n```\n"
    )
    assert named_commands(page) == {"search", "serch", "index"}
    assert named_commands(page) - set(subcommands(build_parser())) == {"serch"}
