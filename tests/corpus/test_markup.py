"""Markdown, HTML and PDF files read as a person sees them: a title, text without markup."""

from __future__ import annotations

from pathlib import Path

import pytest
from required import require

from densekit.corpus import read_corpus
from densekit.corpus.markup import read_html, read_markdown
from densekit.errors import InputError

NOTE = """---
title: Vitamin D and bones
tags: [nutrition, bones]
date: 2024-05-01
---
# A heading that is not the title

Calcium and **vitamin D** keep [bones](https://example.org/bones) strong.
An `inline code` word, <span class="x">inline HTML</span>.

- a list item

```python
print("code keeps its content")
```
"""


def test_markdown_front_matter_gives_title_and_metadata_and_markup_goes() -> None:
    read = read_markdown(NOTE, "note.md")
    assert read.title == "Vitamin D and bones"
    assert read.metadata == {"tags": ["nutrition", "bones"], "date": "2024-05-01"}
    assert "Calcium and vitamin D keep bones strong." in read.text
    for markup in ("**", "](", "https://", "<span", "```", "---"):
        assert markup not in read.text, markup
    assert "inline code" in read.text and 'print("code keeps its content")' in read.text
    assert "A heading that is not the title" in read.text and "a list item" in read.text


def test_markdown_without_front_matter_takes_its_first_heading() -> None:
    read = read_markdown("## Results\n\nIt *works*.\n\n## More\n", "r.md")
    assert read.title == "Results" and read.text == "It works.\n\nMore"  # title not repeated


def test_bad_front_matter_is_named_with_its_line() -> None:
    with pytest.raises(InputError, match=r"bad\.md: line 3: the front matter is not valid YAML"):
        read_markdown("---\ntitle: ok\ntags: [unclosed\n---\ntext\n", "bad.md")


def test_html_title_visible_text_only() -> None:
    page = """<html><head><title>Salmon &amp; rivers</title><style>p{color:red}</style>
    <script>var hidden = "no";</script></head><body><h1>Salmon &amp; rivers</h1>
    <p>Salmon <b>swim</b> upstream.</p><p>To spawn.<img src="x.png" alt="a salmon"></p>
    </body></html>"""
    read = read_html(page)
    assert read.title == "Salmon & rivers"
    assert read.text == "Salmon swim upstream.\n\nTo spawn. a salmon"
    assert "hidden" not in read.text and "color" not in read.text


def one_page_pdf(path: Path, text: str) -> Path:
    """A minimal PDF holding ``text`` on one page, in Helvetica."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Title (Comets and ice) >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    path.write_bytes(bytes(out))
    return path


def test_a_folder_of_markdown_html_and_pdf_reads_each_as_people_see_it(tmp_path: Path) -> None:
    require("pypdf")
    (tmp_path / "note.md").write_text(NOTE, encoding="utf-8")
    (tmp_path / "page.html").write_text("<title>Dogs</title><p>Loyal <i>dogs</i>.</p>")
    one_page_pdf(tmp_path / "paper.pdf", "Icy comets orbit the sun.")
    (tmp_path / "broken.pdf.txt").write_text("plain")
    docs = {doc.id: doc for doc in read_corpus(tmp_path)}
    assert set(docs) == {"note.md", "page.html", "paper.pdf", "broken.pdf.txt"}
    assert docs["page.html"].title == "Dogs" and docs["page.html"].text == "Loyal dogs."
    assert docs["paper.pdf"].title == "Comets and ice"
    assert "Icy comets orbit the sun." in docs["paper.pdf"].text
    assert docs["note.md"].metadata["tags"] == ["nutrition", "bones"]
    assert docs["note.md"].metadata["path"] == "note.md"


def test_an_unreadable_pdf_is_named(tmp_path: Path) -> None:
    require("pypdf")
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf")
    with pytest.raises(InputError, match=r"bad\.pdf: not a readable PDF"):
        list(read_corpus(tmp_path))


def test_html_tables_headings_and_markdown_html_blocks_keep_their_words_apart() -> None:
    page = (
        "<h1>Intro</h1><p>First.</p><h1>Usage</h1>"
        "<table><tr><th>Name</th><th>Dose</th></tr><tr><td>Vitamin</td><td>400IU</td></tr></table>"
    )
    read = read_html(page)
    assert read.title == "Intro"  # the first <h1> alone, without a <title>
    assert read.text == "First.\n\nUsage\n\nName Dose\n\nVitamin 400IU"
    note = read_markdown("# Note\n\n<div>\nhidden block text\n</div>\n\nAfter.\n", "n.md")
    assert note.text == "hidden block text\n\nAfter."
