from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pytest
from required import require

from densekit.corpus import CorpusReader, FieldNames, read_corpus
from densekit.errors import InputError


def test_beir_jsonl_reads_ids_titles_text_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text(
        json.dumps({"_id": "7", "title": "T", "text": "body", "metadata": {"year": 2020}}) + "\n\n",
        encoding="utf-8",
    )
    [doc] = list(read_corpus(path))
    assert (doc.id, doc.title, doc.text) == ("7", "T", "body")
    assert doc.metadata == {"metadata": {"year": 2020}}
    assert doc.content == "T body"
    assert doc.source == f"{path}:1"


def test_gzip_and_custom_fields(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"pid": "a", "passage": "hello world", "heading": "H"}) + "\n")
    docs = list(read_corpus(path, fields=FieldNames(id="pid", text="passage", title="heading")))
    assert [(d.id, d.title, d.text) for d in docs] == [("a", "H", "hello world")]


def test_csv_and_tsv_with_quoted_multiline_fields(tmp_path: Path) -> None:
    csv_path = tmp_path / "docs.csv"
    csv_path.write_text('id,title,text\n1,One,"first, with comma"\n2,Two,"line\nbreak"\n3,,x\n')
    docs = list(read_corpus(csv_path))
    assert [d.id for d in docs] == ["1", "2", "3"]
    assert docs[1].text == "line\nbreak"
    assert docs[2].source == f"{csv_path}:5"
    tsv_path = tmp_path / "docs.tsv"
    tsv_path.write_text("docid\tcontents\nx\tsome text\n")
    assert [(d.id, d.text) for d in read_corpus(tsv_path)] == [("x", "some text")]


def test_csv_row_with_wrong_column_count_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_text("id,text\n1,ok\n2,too,many\n")
    with pytest.raises(InputError, match=r"docs\.csv:3: 3 columns"):
        list(read_corpus(path))


def test_folder_of_text_and_markdown_uses_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "sub" / "b.md").write_text("# beta")
    (tmp_path / "ignored.bin").write_bytes(b"\x00")
    docs = list(read_corpus(tmp_path))
    assert [(d.id, d.title, d.text) for d in docs] == [
        ("a.txt", "", "alpha"),
        ("sub/b.md", "beta", ""),  # the heading is the title
    ]
    assert docs[1].metadata["path"] == "sub/b.md" and docs[1].metadata["modified"][:2] == "20"


def test_parquet(tmp_path: Path) -> None:
    pa = require("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"id": ["p1", "p2"], "text": ["one", "two"]}), path)
    assert [d.id for d in read_corpus(path)] == ["p1", "p2"]


def test_reader_streams_instead_of_loading_the_file(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "1", "text": "fine"}\n{broken\n')
    documents = read_corpus(path)
    assert next(documents).id == "1"  # the good line is yielded before the bad one is read
    with pytest.raises(InputError):
        next(documents)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"_id": "1", "text": "ok"}\n{"_id": "2", "text": \n', r"corpus\.jsonl:2: malformed JSON"),
        (
            '{"_id": "1", "text": "ok"}\n{"_id": "2"}\n',
            r"corpus\.jsonl:2: missing text field 'text'",
        ),
        (
            '{"_id": "1", "text": "ok"}\n{"text": "no id"}\n',
            r"corpus\.jsonl:2: missing id field '_id'",
        ),
        ('{"title": "x", "body2": "y"}\n', r"corpus\.jsonl:1: no id field"),
        ("[1, 2]\n", r"corpus\.jsonl:1: expected a JSON object"),
        ('{"_id": "1", "text": 5}\n', r"corpus\.jsonl:1: field 'text' of document '1' is a int"),
    ],
)
def test_bad_jsonl_lines_are_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        list(read_corpus(path))


def test_non_utf8_bytes_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(b'{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"corpus\.jsonl:2: not valid UTF-8"):
        list(read_corpus(path))
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "bad.txt").write_bytes(b"line one\nline \xff two\n")
    with pytest.raises(InputError, match=r"bad\.txt:2: not valid UTF-8"):
        list(read_corpus(folder))


def test_empty_documents_are_skipped_and_counted_or_refused(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text(
        '{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "  ", "title": ""}\n'
        '{"_id": "3", "text": "", "title": "title only"}\n'
    )
    reader = CorpusReader(path)
    assert [d.id for d in reader] == ["1", "3"]
    assert (reader.stats.documents, reader.stats.skipped_empty) == (2, 1)
    assert reader.stats.first_skipped == ["2"]
    with pytest.raises(InputError, match=r"corpus\.jsonl:2: document '2' is empty"):
        list(CorpusReader(path, on_empty="error"))


def test_missing_path_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        CorpusReader(tmp_path / "nope.jsonl")
    odd = tmp_path / "corpus.xml"
    odd.write_text("<x/>")
    with pytest.raises(InputError, match="cannot tell the corpus format"):
        CorpusReader(odd)


def test_csv_quoting_errors_name_the_record_start(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_text('id,text\n1,"fine"\n2,"Hello" world\n')
    with pytest.raises(InputError, match=r"docs\.csv:3: .*check the quoting"):
        list(read_corpus(path))


def test_tsv_quotes_are_plain_characters(tmp_path: Path) -> None:
    path = tmp_path / "docs.tsv"
    path.write_text('id\ttext\n1\t"unterminated quote\n2\tsecond\n3\t"Hi" she said\n')
    docs = list(read_corpus(path))
    assert [d.text for d in docs] == ['"unterminated quote', "second", '"Hi" she said']


def test_huge_csv_fields_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    big = "word " * 60_000  # 300 KB, past the csv module's default field limit
    path.write_bytes(("\ufeffid,text\n1," + big + "\n").encode("utf-8"))
    [doc] = list(read_corpus(path))
    assert doc.id == "1" and len(doc.text) == len(big)


def test_explicit_fields_are_checked_against_the_header(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_text("id,text\n1,x\n")
    with pytest.raises(InputError, match=r"docs\.csv:1 \(header\): no column 'body'"):
        list(read_corpus(path, fields=FieldNames(text="body")))


def test_damaged_gzip_and_wrong_format_are_input_errors(tmp_path: Path) -> None:
    good = gzip.compress(b'{"_id": "1", "text": "x"}\n' * 2000)
    truncated = tmp_path / "corpus.jsonl.gz"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match="cannot read the file"):
        list(read_corpus(truncated))
    fake = tmp_path / "fake.jsonl.gz"
    fake.write_text('{"_id": "1", "text": "x"}\n')
    with pytest.raises(InputError, match="cannot read the file"):
        list(read_corpus(fake))
    with pytest.raises(InputError, match="does not fit a folder"):
        CorpusReader(tmp_path, format="jsonl")
    bad_parquet = tmp_path / "x.parquet"
    bad_parquet.write_text("not parquet")
    require("pyarrow")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        list(read_corpus(bad_parquet))


@pytest.mark.parametrize(
    ("id_json", "reason"),
    [
        ("7", "is a number"),
        ("1.0", "is a number"),
        ("true", "is a boolean"),
        ('{"a": 1}', "is an object"),
        ('"a\\nb"', "control character"),
        ('"a\\u0000b"', "control character"),
        ('"\\ud800"', "lone surrogate"),
        ('" d2"', "whitespace"),
        ('".."', "URL paths drop"),
        (f'"{"x" * 513}"', "513 characters"),
    ],
)
def test_jsonl_ids_that_break_the_id_rules_name_line_and_field(
    tmp_path: Path, id_json: str, reason: str
) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text(f'{{"_id": "d1", "text": "a"}}\n{{"_id": {id_json}, "text": "b"}}\n')
    with pytest.raises(InputError, match=rf"corpus\.jsonl:2: field '_id': id .*{reason}"):
        list(read_corpus(path))


def test_text_formats_give_trimmed_text_ids_under_the_same_rules(tmp_path: Path) -> None:
    tsv = tmp_path / "docs.tsv"
    tsv.write_text("id\ttext\n 7 \tseven\n1.0\tone\n")
    assert [d.id for d in read_corpus(tsv)] == ["7", "1.0"]
    csv_path = tmp_path / "docs.csv"
    csv_path.write_text('id,text\n"a\nb",multi-line id\n')
    with pytest.raises(InputError, match=r"docs\.csv:2: field 'id': id 'a\\nb' holds a control"):
        list(read_corpus(csv_path))


def test_parquet_ids_must_be_strings(tmp_path: Path) -> None:
    pa = require("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"id": [1, 2], "text": ["one", "two"]}), path)
    with pytest.raises(InputError, match=r"docs\.parquet:row 1: field 'id': id 1 is a number"):
        list(read_corpus(path))


def test_folder_paths_that_break_the_id_rules_are_refused(tmp_path: Path) -> None:
    (tmp_path / "line\nbreak.txt").write_text("text")
    with pytest.raises(InputError, match=r"line\nbreak\.txt: its path under .*control character"):
        list(read_corpus(tmp_path))


def test_lone_surrogates_in_text_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "d1", "title": "ok", "text": "caf\\udce9"}\n')
    with pytest.raises(InputError, match=r"corpus\.jsonl:1: field 'text' of document 'd1' holds"):
        list(read_corpus(path))


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ('"note": "caf\\udce9"', "field 'note'"),
        ('"tags": ["ok", {"x": "\\ud800"}]', "field 'tags[1].x'"),
        ('"\\ud800": 1', "a key of the record"),
    ],
)
def test_lone_surrogates_in_metadata_are_refused_by_field(
    tmp_path: Path, extra: str, field: str
) -> None:
    # Metadata is stored as UTF-8 like the text: a lone surrogate cannot be.
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "b", ' + extra + "}\n")
    with pytest.raises(InputError, match="lone surrogate") as refused:
        list(read_corpus(path))
    assert f"corpus.jsonl:2: {field} of document 'd2' holds" in str(refused.value)


def test_json_nested_too_deeply_to_read_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    path.write_text('{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "b", "m": ' + deep + "}\n")
    with pytest.raises(InputError, match=r"corpus\.jsonl:2: JSON nested too deeply to read"):
        list(read_corpus(path))


def test_a_huge_line_is_read_with_two_copies_at_most(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    text = "word " * 2_000_000  # 10 MB on one line, ending in whitespace
    path.write_text(json.dumps({"_id": "huge", "title": "T", "text": text}) + "\n")
    tracemalloc.start()
    try:
        reader = CorpusReader(path)
        [doc] = list(reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert doc.text == text and reader.stats.documents == 1
    assert peak < 2.5 * len(text)  # the line's bytes and text, never more at once


def test_csv_metadata_cells_keep_the_types_they_read_as(tmp_path: Path) -> None:
    path = tmp_path / "docs.csv"
    path.write_text(
        "id,text,year,score,zip,reviewed,venue,big\n"
        "d1,body,2020,-1.5,007,true,sigir,1e999\n"
        'd2,body,1999,0.25,12345,false,"1,000",3\n'
    )
    first, second = read_corpus(path)
    assert first.metadata == {
        "year": 2020, "score": -1.5, "zip": "007", "reviewed": True, "venue": "sigir",
        "big": "1e999",
    }  # fmt: skip
    assert second.metadata["zip"] == 12345 and second.metadata["venue"] == "1,000"
    assert second.id == "d2"  # ids stay text, whatever they look like


def test_parquet_metadata_keeps_numbers_lists_and_dates_as_iso_text(tmp_path: Path) -> None:
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "id": ["a"],
            "text": ["body"],
            "year": [2021],
            "tags": [["ml", "ir"]],
            "published": [datetime.date(2021, 5, 4)],
            "seen": [datetime.datetime(2021, 5, 4, 10, 30)],
        }
    )
    pq.write_table(table, tmp_path / "docs.parquet")
    (document,) = read_corpus(tmp_path / "docs.parquet")
    assert document.metadata == {
        "year": 2021,
        "tags": ["ml", "ir"],
        "published": "2021-05-04",
        "seen": "2021-05-04T10:30:00",
    }
