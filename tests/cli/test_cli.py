"""The CLI as a user meets it: exit codes, messages without tracebacks, JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from required import require

from densekit.cli.main import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def judged_static_collection(capsys: pytest.CaptureFixture[str], dataset: Path, out: Path) -> Path:
    """Give ``dataset`` train judgements (q1 -> d3, q2 -> d2) and index its corpus with the
    static model at ``out``, as training commands need."""
    require("static_model")
    (dataset / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td3\t1\nq2\td2\t1\n", encoding="utf-8"
    )
    flags = ["--model", "static", "--quiet", "--no-cache"]
    assert run_cli(capsys, "index", dataset / "corpus.jsonl", "--out", out, *flags)[0] == 0
    return out


def test_models_lists_the_bundled_default(capsys) -> None:
    code, out, _ = run_cli(capsys, "models", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert code == 0
    assert rows["minilm"]["offline"] is True and rows["minilm"]["default"] is True


def test_bm25_index_search_info_eval_round_trip(capsys, tiny_beir: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "col"
    corpus = tiny_beir / "corpus.jsonl"
    code, out, _ = run_cli(
        capsys, "index", corpus, "--out", out_dir, "--retriever", "bm25", "--quiet"
    )
    assert code == 0 and "5 documents" in out

    code, out, _ = run_cli(capsys, "search", out_dir, "loyal dogs", "-k", "2", "--json")
    result = json.loads(out)
    assert code == 0 and result["retriever"] == "bm25"
    assert result["hits"][0]["id"] == "d2" and result["hits"][0]["rank"] == 1

    code, out, _ = run_cli(capsys, "info", out_dir, "--json")
    assert code == 0 and json.loads(out)["documents"] == 5

    run_file = tmp_path / "run.trec"
    code, out, _ = run_cli(
        capsys,
        "eval",
        tiny_beir,
        "--collection",
        out_dir,
        "--metrics",
        "nDCG@10,R@100",
        "--run-out",
        run_file,
        "--json",
    )
    report = json.loads(out)
    assert code == 0
    assert set(report["metrics"]) == {"nDCG@10", "R@100"}
    assert report["metrics"]["R@100"] == pytest.approx(1.0)
    assert run_file.read_text().startswith("q1 Q0 ")

    # The written run scores the same when read back.
    code, out, _ = run_cli(
        capsys, "eval", tiny_beir, "--run", run_file, "--metrics", "nDCG@10,R@100", "--json"
    )
    assert code == 0
    assert json.loads(out)["metrics"] == pytest.approx(report["metrics"], abs=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "{tmp}/missing", "q"], "no such collection"),
        (["info", "{tmp}"], "not a densekit collection"),
        (["index", "{tmp}/none.jsonl", "--out", "{tmp}/o"], "no such file"),
        (["eval", "{tmp}", "--collection", "{tmp}"], "no queries.jsonl"),
        (["eval", "{tmp}", "--retriever", "bm25"], "no queries.jsonl"),
    ],
)
def test_errors_exit_2_with_a_message(capsys, tmp_path: Path, args: list[str], message: str):
    code, _, err = run_cli(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert code == 2
    assert err.startswith("densekit: error: ") and message in err


def test_existing_collection_without_overwrite(capsys, corpus_file: Path, tmp_path: Path) -> None:
    args = ["index", corpus_file, "--out", tmp_path / "c", "--retriever", "bm25", "--quiet"]
    assert run_cli(capsys, *args)[0] == 0
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "pass --overwrite" in err
    assert run_cli(capsys, *args, "--overwrite")[0] == 0


def test_empty_documents_are_reported_or_refused(capsys, tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "a", "text": "words"}\n{"_id": "b", "text": ""}\n')
    code, _, err = run_cli(
        capsys, "index", corpus, "--out", tmp_path / "o", "--retriever", "bm25", "--quiet"
    )
    assert code == 0 and "skipped 1 empty documents (e.g. b)" in err
    code, _, err = run_cli(
        capsys, "index", corpus, "--out", tmp_path / "o2", "--retriever", "bm25", "--empty", "error"
    )
    assert code == 2 and "c.jsonl:2: document 'b' is empty" in err
    assert not (tmp_path / "o2" / "manifest.json").exists()


def test_malformed_corpus_from_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "1", "text": "ok"}\n{"_id": "2", "text": "oops"\n')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "densekit.cli.main",
            "index",
            str(corpus),
            "--out",
            str(tmp_path / "out"),
            "--retriever",
            "bm25",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "corpus.jsonl:2: malformed JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_qrels_naming_unknown_documents_warn_with_counts(capsys, tiny_beir: Path, tmp_path: Path):
    with (tiny_beir / "qrels" / "test.tsv").open("a") as handle:
        handle.write("q2\tghost1\t1\nq2\tghost2\t1\nq7\td1\t1\n")
    code, out, err = run_cli(
        capsys, "eval", tiny_beir, "--retriever", "bm25", "--metrics", "R@100", "--json"
    )
    assert code == 0
    assert "1 judged queries are not in queries.jsonl" in err
    assert "name 2 documents (2 judgements) that the collection does not hold" in err
    assert json.loads(out)["queries"] == 2


def test_flag_combinations_that_make_no_sense_are_refused(capsys, tiny_beir: Path, tmp_path: Path):
    run_file = tmp_path / "run.trec"
    run_file.write_text("q1 Q0 d3 1 1.0 t\n")
    code, _, err = run_cli(capsys, "eval", tiny_beir, "--run", run_file, "--retriever", "bm25")
    assert code == 2 and "drop --retriever" in err
    code, _, err = run_cli(
        capsys, "index", tiny_beir / "corpus.jsonl", "--out", tmp_path / "o", "--chunk-overlap", "8"
    )
    assert code == 2 and "--chunk-overlap needs --chunk-tokens" in err
    code, _, err = run_cli(
        capsys, "eval", tiny_beir, "--retriever", "bm25", "--run-out", tmp_path / "no" / "run.trec"
    )
    assert code == 2 and "its folder does not exist" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["search", str(tmp_path), "q", "-k", "0"])
    assert exit_info.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


def test_per_query_values_and_fusion_override(capsys, tiny_beir: Path, tmp_path: Path) -> None:
    code, out, _ = run_cli(
        capsys, "eval", tiny_beir, "--retriever", "bm25", "--metrics", "RR@10", "--per-query"
    )
    assert code == 0
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("q")]
    assert [row[0] for row in rows] == ["query", "q1", "q2"]
    code, _, err = run_cli(
        capsys,
        "index",
        tiny_beir / "corpus.jsonl",
        "--out",
        tmp_path / "c",
        "--retriever",
        "bm25",
        "--quiet",
        "--alpha",
        "2",
    )
    assert code == 2 and "alpha must be in [0, 1]" in err


def test_encode_command_writes_resumable_vectors(capsys, tiny_beir: Path, tmp_path: Path):
    require("static_model")
    out = tmp_path / "vectors"
    args = ["encode", tiny_beir / "corpus.jsonl", "--out", out, "--model", "static", "--quiet"]
    code, stdout, _ = run_cli(capsys, *args, "--no-cache", "--shard-rows", "2")
    assert code == 0 and "5 documents, 5 passages in 3 shards" in stdout
    assert json.loads((out / "embeddings.json").read_text())["encoder"]["name"] == "static"
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "pass --overwrite" in err
    code, _, err = run_cli(capsys, *args, "--no-cache", "--cache-dir", tmp_path)
    assert code == 2 and "contradict" in err


def test_unknown_backend_is_refused(capsys, tiny_beir: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["index", str(tiny_beir / "corpus.jsonl"), "--out", str(tmp_path), "--backend", "tpu"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'tpu'" in capsys.readouterr().err


def test_index_spec_flags_build_and_tune_an_approximate_index(capsys, tiny_beir, tmp_path):
    require("static_model")
    out = tmp_path / "hnsw"
    corpus = tiny_beir / "corpus.jsonl"
    base = ["index", corpus, "--model", "static", "--retriever", "dense", "--quiet", "--no-cache"]
    code, _, err = run_cli(capsys, *base, "--out", out, "--index", "HNSW16(efSearch=8)")
    assert code == 0, err
    code, stdout, _ = run_cli(capsys, "info", out, "--json")
    assert json.loads(stdout)["index"] == "HNSW16(efSearch=8)"
    code, stdout, _ = run_cli(capsys, "search", out, "loyal dogs", "--ef-search", "32", "--json")
    assert code == 0 and len(json.loads(stdout)["hits"]) == 5
    code, _, err = run_cli(capsys, "search", out, "dogs", "--nprobe", "4")
    assert code == 2 and "no query-time setting 'nprobe'" in err

    code, _, err = run_cli(capsys, *base, "--out", tmp_path / "bad", "--index", "HNSW32+x")
    assert code == 2 and "invalid index spec" in err and "Grammar" in err
    assert not (tmp_path / "bad").exists()
    code, _, err = run_cli(capsys, *base, "--out", tmp_path / "pq", "--index", "PQ7")
    assert code == 2 and "must divide the 64 dimensions" in err


def test_bench_index_prints_writes_and_plots_the_trade_off(capsys, tiny_beir, tmp_path):
    require("static_model")
    collection = tmp_path / "c"
    corpus = tiny_beir / "corpus.jsonl"
    flags = ["--model", "static", "--retriever", "dense", "--quiet", "--no-cache"]
    assert run_cli(capsys, "index", corpus, "--out", collection, *flags)[0] == 0
    queries = tmp_path / "queries.txt"
    queries.write_text("loyal dogs\nvitamin bones\n", encoding="utf-8")
    report, plot = tmp_path / "bench.json", tmp_path / "bench.png"
    code, out, err = run_cli(
        capsys,
        "bench-index",
        collection,
        "--specs",
        "flat;HNSW8;binary+rescore*2",
        "--queries",
        queries,
        "-k",
        "3",
        "--out",
        report,
        "--plot",
        plot,
    )
    assert code == 0, err
    assert "recall@3" in out and "binary+rescore*2" in out
    results = {r["spec"]: r for r in json.loads(report.read_text())["results"]}
    assert results["flat"]["recall_at_k"] == 1.0
    assert results["binary+rescore*2"]["resident_bytes"] < results["flat"]["resident_bytes"]
    assert plot.stat().st_size > 0

    code, _, err = run_cli(capsys, "bench-index", collection, "--specs", "HNSW32;bogus spec")
    assert code == 2 and "invalid index spec 'bogus spec'" in err


def test_z_score_fusion_is_chosen_by_flag_and_stored_by_index(
    capsys, tiny_beir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "c"
    args = ["index", tiny_beir / "corpus.jsonl", "--out", out, "--quiet"]
    code, _, err = run_cli(capsys, *args, "--normalization", "z-score", "--alpha", "0.3")
    assert code == 0, err
    stored = json.loads((out / "manifest.json").read_text())["fusion"]
    assert stored["normalization"] == "z-score" and stored["weights"] == [0.3, 0.7]
    code, found, _ = run_cli(capsys, "search", out, "solar panels", "-k", "2", "--json")
    assert code == 0 and len(json.loads(found)["hits"]) == 2
    # Back to min-max for one search; RRF has no scores to scale.
    code, _, err = run_cli(capsys, "search", out, "solar", "--normalization", "min-max")
    assert code == 0, err
    code, _, err = run_cli(
        capsys, "search", out, "solar", "--fusion", "rrf", "--normalization", "z-score"
    )
    assert code == 2 and "use it with --fusion convex" in err


def test_new_collections_fuse_calibrated_and_search_explains_it(
    capsys, tiny_beir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "c"
    code, _, err = run_cli(capsys, "index", tiny_beir / "corpus.jsonl", "--out", out, "--quiet")
    assert code == 0, err
    assert json.loads((out / "manifest.json").read_text())["fusion"]["method"] == "calibrated"
    code, text, err = run_cli(capsys, "search", out, "vitamin bones", "-k", "2", "--explain")
    assert code == 0, err
    assert "weights for this query (calibrated fusion)" in text and "the most the query" in text
    code, found, _ = run_cli(capsys, "search", out, "vitamin bones", "--explain", "--json")
    explained = json.loads(found)["explain"]
    assert [part["retriever"] for part in explained["lists"]] == ["dense", "bm25"]
    assert sum(part["share"] for part in explained["lists"]) == pytest.approx(1.0)
    # A fixed weight asked for on the calibrated default means convex; with --fusion
    # calibrated it is refused.
    code, found, err = run_cli(capsys, "search", out, "vitamin", "--alpha", "0.3", "--json")
    assert code == 0, err
    flags = ["--fusion", "calibrated", "--alpha", "0.3"]
    code, _, err = run_cli(capsys, "search", out, "vitamin", *flags)
    assert code == 2 and "calibrated fusion weighs each query's lists itself" in err


def test_index_keeps_the_stemmer_it_was_given(capsys, tiny_beir: Path, tmp_path: Path) -> None:
    out = tmp_path / "c"
    args = ["index", tiny_beir / "corpus.jsonl", "--out", out, "--quiet", "--retriever", "bm25"]
    code, _, err = run_cli(capsys, *args, "--stemmer", "none")
    assert code == 0, err
    assert json.loads((out / "manifest.json").read_text())["lexical"]["stemmer"] == "none"
    code, shown, _ = run_cli(capsys, "info", out, "--json")
    assert code == 0 and json.loads(shown)["bm25"]["stemmer"] == "none"
    code, found, _ = run_cli(capsys, "search", out, "fracture", "--json")  # "fractures" only
    assert code == 0 and json.loads(found)["hits"] == []
    code, _, err = run_cli(capsys, *args, "--stemmer", "klingon", "--overwrite")
    assert code == 2 and "unknown BM25 stemmer 'klingon'" in err


def test_bm25_term_weights_are_kept_and_searched_in_the_next_process(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    people = {"casimiro": "Key Lime pie", "geneva": "Geneva likes limes, quokkas and tapirs"}
    corpus.write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in people.items()))

    def densekit(*args: object) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "densekit.cli.main", *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    out = tmp_path / "c"
    built = densekit("index", corpus, "--out", out, "--retriever", "bm25", "--quiet",
                     "--exact-words", "0.5", "--word-pairs", "0.25")  # fmt: skip
    assert built.returncode == 0, built.stderr
    lexical = json.loads((out / "manifest.json").read_text())["lexical"]
    assert (lexical["exact_weight"], lexical["pair_weight"]) == (0.5, 0.25)
    found = densekit("search", out, "limes", "--json")
    assert found.returncode == 0, found.stderr
    assert [hit["id"] for hit in json.loads(found.stdout)["hits"]] == ["geneva", "casimiro"]
    shown = densekit("info", out)
    assert "words 1 + exact forms 0.5 + word pairs 0.25" in shown.stdout


def test_bm25_terms_default_by_retriever_and_refuse_a_negative_weight(
    capsys, tiny_beir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "c"
    args = ["index", tiny_beir / "corpus.jsonl", "--out", out, "--quiet", "--retriever", "bm25"]
    assert run_cli(capsys, *args)[0] == 0
    code, shown, _ = run_cli(capsys, "info", out, "--json")
    assert code == 0 and json.loads(shown)["bm25"]["terms"] == "classic (words only)"
    code, _, err = run_cli(capsys, *args, "--overwrite", "--word-pairs", "-1")
    assert code == 2 and "BM25 pairs weight -1.0: give a number >= 0" in err
    assert "Traceback" not in err
    assert run_cli(capsys, "search", out, "vitamin")[0] == 0  # the collection is untouched


def test_device_flag_runs_on_the_cpu_and_refuses_a_missing_gpu(capsys, tiny_beir: Path) -> None:
    import torch

    corpus = tiny_beir / "corpus.jsonl"
    code, out, err = run_cli(
        capsys, "eval", tiny_beir, "--model", "minilm", "--retriever", "dense", "--device", "cpu"
    )
    assert code == 0 and "nDCG@10" in out, err
    missing = f"cuda:{torch.cuda.device_count()}"
    code, _, err = run_cli(capsys, "index", corpus, "--out", "x", "--device", missing)
    assert code == 2 and f"device '{missing}' is not on this machine" in err
    assert "Traceback" not in err


def test_device_flag_reaches_the_model_where_a_gpu_is_seen(
    capsys, tiny_beir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sentence_transformers

    from densekit.encode import devices

    real = sentence_transformers.SentenceTransformer
    asked: list[str | None] = []

    def recording(*args, device=None, **kwargs):  # loads on the CPU, records what was asked
        asked.append(device)
        return real(*args, device="cpu", **kwargs)

    monkeypatch.setattr(devices, "available_devices", lambda: ["cpu", "cuda:0"])
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", recording)
    flags = ["--model", "minilm", "--retriever", "dense"]
    assert run_cli(capsys, "eval", tiny_beir, *flags, "--device", "cpu")[0] == 0
    assert asked and set(asked) == {"cpu"}  # every model the command loaded
    asked.clear()
    assert run_cli(capsys, "eval", tiny_beir, *flags)[0] == 0
    assert asked and set(asked) == {"cuda:0"}  # auto: the (seen) GPU; the flag did not stay
