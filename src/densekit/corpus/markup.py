"""Files as people have them: Markdown, HTML and PDF read into a title, plain text and metadata.

- Markdown: YAML front matter (between ``---`` lines) gives the title and metadata; without a
  title there, the first heading is the title. The text is what a reader sees: markup, link
  targets and HTML tags are dropped, code keeps its content, each block is a paragraph.
- HTML: the ``<title>`` (else the first ``<h1>``) is the title; scripts, styles and templates
  are dropped, block elements break paragraphs.
- PDF (``pip install 'densekit[pdf]'``): each page's text, pages as paragraphs; the title from
  the file's metadata.

So snippets, highlights and what the model reads hold no markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from densekit.corpus.document import metadata_value
from densekit.errors import InputError, MissingDependencyError

FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)


@dataclass(frozen=True)
class ReadableText:
    """What a markup file says, without its markup."""

    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    sections: list[int] = field(default_factory=list)  # where each heading starts in text


def read_markdown(source: str, where: str) -> ReadableText:
    from markdown_it import MarkdownIt

    metadata: dict[str, Any] = {}
    matter = FRONT_MATTER.match(source)
    if matter is not None:
        metadata = _front_matter(matter.group(1), where)
        source = source[matter.end() :]
    tokens = MarkdownIt("commonmark").enable("table").parse(source)
    blocks: list[tuple[str, bool]] = []  # (text, is a heading)
    heading: str | None = None
    in_heading = False
    for token in tokens:
        if token.type == "heading_open":
            in_heading = True
        elif token.type == "heading_close":
            in_heading = False
        elif token.type == "inline":
            words = _inline_text(token.children or [])
            if in_heading and heading is None:
                heading = words
            if words:
                blocks.append((words, in_heading))
        elif token.type in ("fence", "code_block"):
            blocks.append((token.content.rstrip("\n"), False))
        elif token.type == "html_block":  # its visible text, as an HTML page's
            visible = read_html(token.content).text
            if visible:
                blocks.append((visible, False))
    title = metadata.pop("title", None)
    title = str(title) if title is not None else heading or ""
    if blocks and blocks[0][0] == title:  # the title heading is the title, not body text
        blocks = blocks[1:]
    text, sections = _joined(blocks)
    return ReadableText(title.strip(), text, metadata, sections)


def _joined(blocks: list[tuple[str, bool]]) -> tuple[str, list[int]]:
    """The blocks as paragraphs, and where each heading among them starts."""
    sections, at = [], 0
    for text, is_heading in blocks:
        if is_heading and at > 0:
            sections.append(at)
        at += len(text) + 2
    return "\n\n".join(text for text, _ in blocks), sections


def _inline_text(children: list[Any]) -> str:
    parts = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n" if child.type == "hardbreak" else " ")
        elif child.type == "image":
            parts.append(child.content)  # its alt text
    return "".join(parts).strip()


def _front_matter(block: str, where: str) -> dict[str, Any]:
    import yaml

    try:
        loaded = yaml.safe_load(block)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 2}" if mark is not None else ""
        raise InputError(
            f"{where}:{line}: the front matter is not valid YAML "
            f"({getattr(error, 'problem', None) or error}); fix it or remove it"
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise InputError(f"{where}: the front matter is a {type(loaded).__name__}, not key: value")
    # Dates and other YAML types become JSON-storable values.
    return {str(key): metadata_value(value) for key, value in loaded.items()}


_SKIPPED = {"script", "style", "template", "noscript"}
_BLOCKS = {
    "p", "div", "section", "article", "header", "footer", "main", "nav", "aside", "li", "ul",
    "ol", "table", "tr", "br", "hr", "pre", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6",
    "dt", "dd", "figcaption", "title",
}  # fmt: skip


_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_CELLS = {"td", "th"}  # a table's cells: words apart, a row per paragraph
_HEADING_MARK = "\x00"  # put before a heading's text: no HTML text holds it


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self.first_h1 = ""
        self._skipping = 0
        self._in: list[str] = []
        self._h1_done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping += 1
        if tag in _BLOCKS:
            self.parts.append("\n\n")
        if tag in _HEADINGS:
            self.parts.append(_HEADING_MARK)
        if tag in ("title", "h1"):
            self._in.append(tag)
        if tag in _CELLS:
            self.parts.append(" ")
        if tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f" {alt} ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED and self._skipping:
            self._skipping -= 1
        if tag in _BLOCKS:
            self.parts.append("\n\n")
        if self._in and self._in[-1] == tag:
            self._in.pop()
        if tag == "h1" and self.first_h1.strip():
            self._h1_done = True  # the first <h1> is the title without a <title>

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "title":
            self.title += data
            return
        if self._skipping:
            return
        if self._in and self._in[-1] == "h1" and not self.title and not self._h1_done:
            self.first_h1 += data
        self.parts.append(data)


def read_html(source: str) -> ReadableText:
    parser = _Visible()
    parser.feed(source)
    parser.close()
    blocks = []
    for block in re.split(r"\n\s*\n", "".join(parser.parts)):
        is_heading = _HEADING_MARK in block
        words = " ".join(block.replace(_HEADING_MARK, " ").split())
        if words:
            blocks.append((words, is_heading))
    title = " ".join((parser.title or parser.first_h1).split())
    if blocks and blocks[0][0] == title:
        blocks = blocks[1:]
    text, sections = _joined(blocks)
    return ReadableText(title=title, text=text, sections=sections)


def read_pdf(path: Path) -> ReadableText:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError:
        raise MissingDependencyError("pypdf", "pdf") from None
    try:
        reader = PdfReader(path)
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or ""
    except (PdfReadError, ValueError, KeyError) as error:
        raise InputError(f"{path}: not a readable PDF ({error}); remove it or fix it") from None
    return ReadableText(title=str(title).strip(), text="\n\n".join(p for p in pages if p))
