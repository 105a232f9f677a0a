"""The CPU engines users pick for fast encoding, run as their users run them: the anchors of
benchmarks/encode.py.

Runs in the anchor environment (`make anchors`: build/anchor-venv, sentence-transformers with
its ONNX and OpenVINO extras, and fastembed, at the versions they install together), never
in densekit's: it imports neither densekit nor the benchmarks' helpers.

    build/anchor-venv/bin/python benchmarks/encode_anchors.py prepare \
        MODEL_DIR OUT MAX_TOKENS CALIBRATION ANCHOR,...
    build/anchor-venv/bin/python benchmarks/encode_anchors.py serve \
        NAME EXPORTS TUNED MAX_TOKENS ALLOCATOR TEXTS WARM_UP_COUNT

`prepare` exports MiniLM once for the named anchors under OUT with each tool's own functions:
ONNX (optimum), its dynamic int8 quantisation for this CPU's instruction set, OpenVINO, its
static int8 quantisation calibrated on the texts in CALIBRATION (a JSON list; the tool's
default calibration set is on a hub), and a fastembed model folder holding the ONNX export.
`serve` loads one anchor and answers the requests encode.py's workers answer: a line
"warm-up OUT" or "measured OUT" encodes the first WARM_UP_COUNT texts of TEXTS or all of
them, saves the vectors to OUT.npy and prints the seconds it took.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path

ANCHORS = ("st-onnx", "st-onnx-int8", "st-openvino", "st-openvino-int8", "fastembed")
OPENVINO_INT8 = "openvino/openvino_model_qint8_quantized.xml"
CALIBRATION_SAMPLES = 300  # the tool's default


def instruction_set() -> str:
    """The quantisation config sentence-transformers offers for this CPU."""
    if sys.platform == "darwin" or not Path("/proc/cpuinfo").exists():
        return "arm64"
    flags = Path("/proc/cpuinfo").read_text()
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    return "avx512" if "avx512f" in flags else "avx2"


def onnx_int8_file() -> str:
    return f"onnx/model_qint8_{instruction_set()}.onnx"


def prepare(
    model_dir: Path, out: Path, max_tokens: int, calibration: Path, anchors: set[str]
) -> None:
    from sentence_transformers import (
        SentenceTransformer,
        export_dynamic_quantized_onnx_model,
        export_static_quantized_openvino_model,
    )

    onnx_dir = out / "onnx"
    if not (onnx_dir / onnx_int8_file()).exists():
        staging = _fresh(onnx_dir)
        model = SentenceTransformer(str(model_dir), backend="onnx", device="cpu")
        model.max_seq_length = max_tokens
        model.save_pretrained(str(staging))
        export_dynamic_quantized_onnx_model(model, instruction_set(), str(staging))
        staging.rename(onnx_dir)
    openvino_dir = out / "openvino"
    if (
        anchors & {"st-openvino", "st-openvino-int8"}
        and not (openvino_dir / OPENVINO_INT8).exists()
    ):
        staging = _fresh(openvino_dir)
        model = SentenceTransformer(str(model_dir), backend="openvino", device="cpu")
        model.max_seq_length = max_tokens
        model.save_pretrained(str(staging))
        # The tool loads its calibration set with `datasets.load_dataset`: a local folder of
        # JSON lines is one, so no hub is needed.
        texts = json.loads(calibration.read_text(encoding="utf-8"))[:CALIBRATION_SAMPLES]
        data = staging / "calibration"
        data.mkdir(parents=True)
        lines = "".join(json.dumps({"sentence": text}) + "\n" for text in texts)
        (data / "train.jsonl").write_text(lines, encoding="utf-8")
        export_static_quantized_openvino_model(
            model,
            None,
            str(staging),
            dataset_name=str(data),
            dataset_config_name="default",
            dataset_split="train",
            column_name="sentence",
        )
        shutil.rmtree(data)
        staging.rename(openvino_dir)
    fastembed_dir = out / "fastembed"
    if not (fastembed_dir / "onnx" / "model.onnx").exists():
        # fastembed loads a folder of an ONNX model and its tokenizer files; its truncation
        # limit is the tokenizer config's model_max_length.
        staging = _fresh(fastembed_dir)
        (staging / "onnx").mkdir(parents=True)
        shutil.copy(onnx_dir / "onnx" / "model.onnx", staging / "onnx" / "model.onnx")
        for name in ("tokenizer.json", "special_tokens_map.json", "config.json"):
            if (onnx_dir / name).exists():
                shutil.copy(onnx_dir / name, staging / name)
        tokenizer_config = json.loads((onnx_dir / "tokenizer_config.json").read_text())
        # fastembed truncates at the smaller of the two keys: both are the length asked.
        tokenizer_config["model_max_length"] = tokenizer_config["max_length"] = max_tokens
        (staging / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
        staging.rename(fastembed_dir)


def _fresh(final: Path) -> Path:
    staging = final.with_name(final.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    return staging


def load(name: str, exports: Path, max_tokens: int):
    """An encode(texts) -> array function for one anchor, loaded as its users load it."""
    import numpy as np

    if name == "fastembed":
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        TextEmbedding.add_custom_model(
            model="local/minilm",
            pooling=PoolingType.MEAN,
            normalization=True,
            sources=ModelSource(hf="local/minilm"),  # never fetched: the folder is given
            dim=384,
        )
        model = TextEmbedding("local/minilm", specific_model_path=str(exports / "fastembed"))
        return lambda texts: np.array(list(model.embed(texts)))
    from sentence_transformers import SentenceTransformer

    backend, _, precision = name.removeprefix("st-").partition("-")
    kwargs = {}
    if precision == "int8":
        kwargs["file_name"] = onnx_int8_file() if backend == "onnx" else OPENVINO_INT8
    model = SentenceTransformer(
        str(exports / backend), backend=backend, device="cpu", model_kwargs=kwargs
    )
    model.max_seq_length = max_tokens
    return model.encode


def serve(
    name: str,
    exports: Path,
    tuned: bool,
    max_tokens: int,
    allocator_file: Path,
    texts_file: Path,
    warm_up: int,
) -> None:
    # The same allocator code as densekit's side, loaded by path before anything else.
    spec = importlib.util.spec_from_file_location("allocator", allocator_file)
    allocator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(allocator)
    if tuned:
        allocator.tune_allocator()
    import numpy as np

    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    encode = load(name, exports, max_tokens)
    print(json.dumps(allocator.allocator_settings()), flush=True)
    for line in sys.stdin:
        request, out = line.split()
        wanted = texts[:warm_up] if request == "warm-up" else texts
        started = time.perf_counter()
        vectors = encode(wanted)
        seconds = time.perf_counter() - started
        np.save(out + ".npy", np.asarray(vectors, dtype=np.float32))
        print(seconds, flush=True)


def main() -> None:
    command, *args = sys.argv[1:]
    if command == "prepare":
        model_dir, out, max_tokens, calibration, anchors = args
        prepare(
            Path(model_dir), Path(out), int(max_tokens), Path(calibration), set(anchors.split(","))
        )
    elif command == "serve":
        name, exports, tuned, max_tokens, allocator_file, texts_file, warm_up = args
        if name not in ANCHORS:
            raise SystemExit(f"unknown anchor {name!r}: one of {', '.join(ANCHORS)}")
        serve(
            name,
            Path(exports),
            tuned == "1",
            int(max_tokens),
            Path(allocator_file),
            Path(texts_file),
            int(warm_up),
        )
    else:
        raise SystemExit(f"unknown command {command!r}: prepare or serve")


if __name__ == "__main__":
    main()
