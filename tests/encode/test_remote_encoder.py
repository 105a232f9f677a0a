"""The openai backend: a densekit server (hashing model) embeds for it as the model itself
would, and a scripted fake endpoint shows retries, refusals and malformed answers."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import HashingEncoder
from serving import RunningServer, free_port

from densekit.cli.main import main
from densekit.encode import load_encoder, remote_http, resolve_model
from densekit.encode.remote import RemoteEncoder
from densekit.encode.remote_http import RemoteEncoderError
from densekit.errors import InputError
from densekit.retrieve import build_collection, open_collection
from densekit.store import BuildOptions
from densekit.store.manifest import EncoderInfo

TEXTS = ["vitamin D and bones", "salmon swim upstream", "loyal dogs", "the cat sat", "calcium"]


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*remote_http.KEY_ENVS, "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff delays asked for, without waiting them."""
    asked: list[float] = []
    monkeypatch.setattr(remote_http, "_sleep", asked.append)
    return asked


@pytest.fixture
def served(server: RunningServer) -> str:
    """A densekit server with the hashing model on /v1/embeddings; its base URL."""
    return server.url + "/v1"


def remote(base_url: str, tmp_path: Path, model: str = "hashing", **options: Any) -> RemoteEncoder:
    options.setdefault("cache_dir", tmp_path / "cache")
    encoder = load_encoder(f"openai:{model}@{base_url}", **options)
    assert isinstance(encoder, RemoteEncoder)
    return encoder


def recorded(encoder: RemoteEncoder) -> list[dict[str, Any]]:
    """The bodies of the requests ``encoder`` sends from now on."""
    bodies: list[dict[str, Any]] = []
    hooks = encoder.endpoint._client().event_hooks
    hooks["request"].append(lambda request: bodies.append(json.loads(request.content)))
    return bodies


# -- against a real densekit server --------------------------------------------------------


def test_vectors_equal_the_served_models_own(served: str, tmp_path: Path) -> None:
    encoder = remote(served, tmp_path)
    hashing = HashingEncoder()
    np.testing.assert_allclose(
        encoder.encode_documents(TEXTS), hashing.encode_documents(TEXTS), atol=1e-6
    )
    np.testing.assert_allclose(
        encoder.encode_queries(TEXTS[:2]), hashing.encode_queries(TEXTS[:2]), atol=1e-6
    )
    assert encoder.dimension == hashing.dimension
    assert encoder.name == "openai:hashing" and encoder.model == "hashing"
    assert encoder.encode_documents([]).shape == (0, hashing.dimension)


def test_requests_hold_at_most_a_batch_and_repeats_are_sent_once(
    served: str, tmp_path: Path
) -> None:
    encoder = remote(served, tmp_path, batch_size=2)
    bodies = recorded(encoder)
    vectors = encoder.encode_documents([*TEXTS, TEXTS[0]])
    assert [len(body["input"]) for body in bodies] == [2, 2, 1]
    assert all(body["model"] == "hashing" and body["encoding_format"] == "float" for body in bodies)
    assert all("input_type" not in body and "dimensions" not in body for body in bodies)
    np.testing.assert_array_equal(vectors[-1], vectors[0])


def test_query_vectors_come_from_the_cache_the_second_time(served: str, tmp_path: Path) -> None:
    first = remote(served, tmp_path)
    expected = first.encode_queries(TEXTS)
    again = remote(served, tmp_path)  # a new process: the width comes from the cache too
    bodies = recorded(again)
    np.testing.assert_array_equal(again.encode_queries(TEXTS[::-1]), expected[::-1])
    assert again.dimension == 64 and bodies == []
    mixed = again.encode_queries(["a new query", TEXTS[1]])
    assert [body["input"] for body in bodies] == [["a new query"]]
    np.testing.assert_array_equal(mixed[1], expected[1])
    off = remote(served, tmp_path, cache=False)
    off_bodies = recorded(off)
    off.encode_queries(TEXTS[:1])
    assert len(off_bodies) == 1


def test_input_type_and_dimensions_are_sent_when_asked(served: str, tmp_path: Path) -> None:
    encoder = remote(served + "#input_type", tmp_path, dim=8)
    bodies = recorded(encoder)
    vectors = encoder.encode_queries([" ".join(TEXTS)])
    encoder.encode_documents(["bones"])
    assert [(b["input_type"], b["dimensions"]) for b in bodies] == [("query", 8), ("document", 8)]
    cut = HashingEncoder().encode_queries([" ".join(TEXTS)])[:, :8]
    assert np.linalg.norm(cut) > 0
    np.testing.assert_allclose(vectors, cut / np.linalg.norm(cut), atol=1e-6)
    assert encoder.dimension == 8
    plain = remote(served, tmp_path)
    assert plain.fingerprint not in (
        encoder.fingerprint,
        remote(served, tmp_path, dim=8).fingerprint,
    )


def test_a_collection_built_through_the_endpoint_reopens_and_searches(
    served: str, tmp_path: Path, corpus_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DENSEKIT_API_KEY", "secret-key-never-saved")
    model = f"openai:hashing@{served}#batch=2"
    options = BuildOptions(model=model, progress=False, cache_dir=tmp_path / "cache")
    build_collection(corpus_file, tmp_path / "coll", options).close()
    manifest = (tmp_path / "coll" / "manifest.json").read_text()
    assert "secret-key-never-saved" not in manifest
    with open_collection(tmp_path / "coll") as collection:  # the model, from the manifest
        info = collection.manifest.encoder
        assert (
            info is not None and info.backend == "openai" and info.location == served + "#batch=2"
        )
        hits = collection.search("vitamin D bones", k=2, retriever="dense")
        assert {hit.id for hit in hits} == {"d3", "d5"}
        assert collection.encoder.fingerprint == info.fingerprint
        assert isinstance(collection.encoder, RemoteEncoder) and collection.encoder.batch_size == 2


def test_a_rebuild_sends_nothing_the_cache_holds(
    served: str, tmp_path: Path, corpus_file: Path
) -> None:
    options = BuildOptions(retriever="dense", progress=False, cache_dir=tmp_path / "cache")
    first = remote(served, tmp_path)
    build_collection(corpus_file, tmp_path / "coll", options, encoder=first).close()
    again = remote(served, tmp_path)  # a new process: no width probe either
    bodies = recorded(again)
    rebuilt = build_collection(
        corpus_file, tmp_path / "coll", options, overwrite=True, encoder=again
    )
    assert bodies == [] and rebuilt.manifest.stats["encoding"]["cached_passages"] == 5
    rebuilt.close()


def test_the_cli_indexes_and_searches_through_the_endpoint(
    served: str, tmp_path: Path, corpus_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "coll"
    model = f"openai:hashing@{served}"
    assert main(["index", str(corpus_file), "--out", str(out), "--model", model, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["search", str(out), "salmon rivers", "-k", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"][0]["id"] == "d4"


# -- the model string and the manifest -----------------------------------------------------


def test_model_strings_resolve_to_the_openai_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = resolve_model("openai:text-embedding-3-small@https://api.example.com/v1")
    assert (spec.name, spec.location, spec.backend) == (
        "openai:text-embedding-3-small",
        "https://api.example.com/v1",
        "openai",
    )
    assert resolve_model("openai:m").location == "https://api.openai.com/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert resolve_model("openai:m").location == "http://127.0.0.1:9/v1"
    assert load_encoder("m", backend="openai").name == "openai:m"
    with pytest.raises(InputError, match="no model name"):
        resolve_model("openai:@http://127.0.0.1:9/v1")
    with pytest.raises(InputError, match="must start with http"):
        resolve_model("openai:m@127.0.0.1:9/v1")
    with pytest.raises(InputError, match="drop --backend"):
        load_encoder("openai:m", backend="onnx")
    with pytest.raises(InputError, match="--layers"):
        load_encoder("openai:m", layers=2)
    with pytest.raises(InputError, match="no credentials"):
        load_encoder("openai:m@http://user:pw@127.0.0.1:9/v1")
    with pytest.raises(InputError, match="unknown option colour"):
        load_encoder("openai:m@http://127.0.0.1:9/v1#colour=red")
    with pytest.raises(InputError, match="retries='many'"):
        load_encoder("openai:m@http://127.0.0.1:9/v1#retries=many")


def test_the_manifest_reopens_the_same_encoder_and_the_key_is_no_part_of_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A served model named like a registry entry stays remote when a collection reopens it.
    encoder = load_encoder("openai:minilm@http://127.0.0.1:9/v1#input_type", dim=32)
    spec = EncoderInfo(
        name=encoder.name,
        location=encoder.spec.location,
        fingerprint=encoder.fingerprint,
        dimension=32,
        max_tokens=encoder.max_tokens,
        backend=encoder.spec.backend,
        dim=encoder.spec.dim,
    ).model_spec()
    monkeypatch.setenv("DENSEKIT_API_KEY", "another-key")
    again = load_encoder(spec, max_tokens=encoder.max_tokens)
    assert isinstance(again, RemoteEncoder) and again.fingerprint == encoder.fingerprint
    assert again.input_type and again.dimension == 32
    moved = load_encoder("openai:minilm@http://127.0.0.1:9/other#input_type", dim=32)
    assert moved.fingerprint != encoder.fingerprint
    options = load_encoder("openai:minilm@http://127.0.0.1:9/v1#input_type&batch=3", dim=32)
    assert options.fingerprint == encoder.fingerprint


def test_token_counts_are_words_and_punctuation() -> None:
    encoder = load_encoder("openai:m@http://127.0.0.1:9/v1#max_tokens=100")
    assert encoder.token_lengths(["Vitamin D, bones.", ""]) == [5, 0]
    assert encoder.token_spans("a bc!") == [(0, 1), (2, 4), (4, 5)]
    assert encoder.max_tokens == 100 and encoder.document_tokens == 100


# -- against a scripted fake endpoint ------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON; None: one float vector per input
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class FakeEndpoint:
    url: str
    replies: list[Reply]
    requests: list[dict[str, Any]] = field(default_factory=list)


def vectors_body(inputs: list[str], width: int = 4) -> dict[str, Any]:
    rows = [[float(i + 1)] + [1.0] * (width - 1) for i in range(len(inputs))]
    return {"data": [{"index": i, "embedding": row} for i, row in enumerate(rows)]}


@pytest.fixture
def fake() -> Iterator[FakeEndpoint]:
    """An endpoint answering with ``replies`` in turn (the last one repeats)."""
    endpoint = FakeEndpoint("", [])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            request["authorization"] = self.headers.get("Authorization")
            endpoint.requests.append(request)
            turn = min(len(endpoint.requests), len(endpoint.replies)) - 1
            reply = endpoint.replies[turn]
            time.sleep(reply.delay_s)
            body = reply.body if reply.body is not None else vectors_body(request["input"])
            payload = body if isinstance(body, str) else json.dumps(body)
            try:
                self.send_response(reply.status)
                for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload.encode())
            except OSError:  # the client gave up waiting
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield endpoint
    server.shutdown()
    server.server_close()


def fake_encoder(fake: FakeEndpoint, *replies: Reply, **options: Any) -> RemoteEncoder:
    fake.replies = list(replies)
    options.setdefault("max_retries", 2)
    options.setdefault("cache", False)
    options.setdefault("backoff_s", 0.001)
    return load_encoder(f"openai:fake@{fake.url}", **options)  # type: ignore[return-value]


def test_a_failure_then_success_is_retried(fake: FakeEndpoint, waits: list[float]) -> None:
    encoder = fake_encoder(fake, Reply(500, {"error": {"message": "busy"}}), Reply())
    vectors = encoder.encode_documents(["a", "b"])
    assert len(fake.requests) == 2 and len(waits) == 1 and 0 < waits[0] <= 0.001
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert vectors[1, 0] > vectors[0, 0]  # rows in index order


def test_retry_after_is_honoured_and_backoff_grows(fake: FakeEndpoint, waits: list[float]) -> None:
    replies = [Reply(429, headers={"Retry-After": "3"}), Reply(503), Reply(503), Reply()]
    encoder = fake_encoder(fake, *replies, max_retries=3, backoff_s=1.0)
    encoder.encode_documents(["a"])
    assert waits[0] == 3.0 and 1.0 <= waits[1] <= 2.0 and 2.0 <= waits[2] <= 4.0


def test_persistent_failures_give_up_after_the_retries(
    fake: FakeEndpoint, waits: list[float]
) -> None:
    for status in (429, 500):
        fake.requests.clear()
        encoder = fake_encoder(fake, Reply(status, {"detail": "overloaded"}))
        with pytest.raises(RemoteEncoderError) as caught:
            encoder.encode_documents(["a"])
        assert len(fake.requests) == 3 and caught.value.status == status
        message = str(caught.value)
        assert "failed 3 times" in message and f"HTTP {status}: overloaded" in message
        assert fake.url + "/embeddings" in message


def test_a_refusal_fails_at_once_naming_url_status_and_message(
    fake: FakeEndpoint, waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = fake_encoder(fake, Reply(401, {"error": {"message": "Incorrect API key"}}))
    with pytest.raises(RemoteEncoderError) as caught:
        encoder.encode_documents(["a"])
    message = str(caught.value)
    assert caught.value.status == 401 and len(fake.requests) == 1 and waits == []
    assert f"{fake.url}/embeddings" in message and "HTTP 401: Incorrect API key" in message
    assert "$DENSEKIT_API_KEY" in message and fake.requests[0]["authorization"] is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    keyed = fake_encoder(fake, Reply(400, "not json at all"))
    with pytest.raises(RemoteEncoderError, match="HTTP 400: not json at all"):
        keyed.encode_documents(["a"])
    assert fake.requests[-1]["authorization"] == "Bearer sk-test"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": [{"index": 0, "embedding": [1.0, 0.0]}]}, "sent 2 inputs but got 1"),
        ({"data": [{"index": 0, "embedding": [1.0]}] * 2}, "index 0; each of 0..1"),
        ({"data": [{"embedding": [1.0, 2.0]}, {"embedding": [1.0]}]}, "1 dimensions, expected 2"),
        ({"data": [{"embedding": [1.0, float("nan")]}, {"embedding": [1.0, 0]}]}, "NaN"),
        ({"data": [{"embedding": [1.0, 1e39]}, {"embedding": [1.0, 0]}]}, "infinite"),
        ({"data": [{"embedding": "!!"}, {"embedding": [1.0]}]}, "nor base64"),
        ({"object": "list"}, "no `data` list"),
        ("<html>", "not JSON"),
    ],
)
def test_malformed_answers_are_refused(fake: FakeEndpoint, body: Any, message: str) -> None:
    encoder = fake_encoder(fake, Reply(200, body))
    with pytest.raises(RemoteEncoderError, match=message):
        encoder.encode_documents(["a", "b"])


def test_a_width_change_between_answers_is_refused(fake: FakeEndpoint) -> None:
    encoder = fake_encoder(fake, Reply(), Reply(body={"data": [{"embedding": [1.0, 2.0, 3.0]}]}))
    assert encoder.encode_documents(["a"]).shape == (1, 4)
    with pytest.raises(RemoteEncoderError, match="embedding 0 has 3 dimensions, expected 4"):
        encoder.encode_documents(["b"])


def test_base64_answers_are_accepted(fake: FakeEndpoint) -> None:
    rows = np.array([[3.0, 4.0], [0.0, 2.0]], dtype="<f4")
    data = [
        {"index": i, "embedding": base64.b64encode(r.tobytes()).decode()}
        for i, r in enumerate(rows)
    ]
    encoder = fake_encoder(fake, Reply(body={"data": data[::-1]}))
    np.testing.assert_allclose(encoder.encode_documents(["a", "b"]), [[0.6, 0.8], [0.0, 1.0]])


def test_a_slow_or_absent_server_times_out_then_gives_up(
    fake: FakeEndpoint, waits: list[float]
) -> None:
    encoder = fake_encoder(fake, Reply(delay_s=1.0), timeout_s=0.2, max_retries=1)
    with pytest.raises(RemoteEncoderError, match=r"no answer within the 0\.2 s timeout"):
        encoder.encode_documents(["a"])
    assert len(fake.requests) == 2
    closed = load_encoder(f"openai:m@http://127.0.0.1:{free_port()}/v1", max_retries=1)
    with pytest.raises(RemoteEncoderError, match="failed 2 times; the last: ConnectError"):
        closed.encode_documents(["a"])


def test_model_names_may_hold_an_at_sign_and_keys_stay_out_of_urls() -> None:
    from densekit.encode.registry import remote_spec

    spec = remote_spec("openai:@cf/baai/bge-base-en-v1.5@https://example.test/v1")
    assert spec.name == "openai:@cf/baai/bge-base-en-v1.5"
    assert spec.location.startswith("https://example.test/v1")
    with pytest.raises(InputError, match="no key in the base URL"):
        load_encoder("openai:m@https://example.test/v1?api-key=secret")
