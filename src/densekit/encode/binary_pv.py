"""Binary Paragraph Vectors (Grzegorczyk & Kurdziel): binary document codes learned from the
raw text alone.

PV-DBOW learns a vector per document that predicts the document's words. The binary variant
puts a sigmoid code layer between the document's parameters and the word predictor, and rounds
it in the forward pass (gradients pass straight through the rounding), so the word predictor
learns to read the bits themselves. The real-valued + binary variant keeps a real vector per
document that predicts the words too, and projects it to the code layer: the codes shortlist,
the real vectors rescore.

The word predictor is a full softmax over the vocabulary, and a document's words enter as
counts (a document's code is the same for each of its words): PV-DBOW's likelihood, computed
whole and deterministically where the paper samples words and approximates the softmax, with
each document's mean over its words (so every document weighs the same in the shared predictor,
where PV-DBOW weighs documents by length). Frequent words are down-weighted by word2vec's
expected subsampling rate, their frequency taken over the kept vocabulary.

Texts become terms by lower-casing and taking Unicode word runs (optionally with adjacent
pairs), with no stemming or stop list: the model is language-agnostic and fully offline.
Every text gets its code by inference: gradient descent on its own parameters with the word
predictor frozen, each text independently of its batch. The training documents are inferred
too, rather than given the parameters training left them, so that a text has one code however
it reaches the model (whether a document was in the training corpus does not change it). On
SciFact this costs some quality at the defaults: trained documents' codes ranked 0.026 nDCG@10
higher against inferred queries' codes (0.010 without noise; inferred ones were ahead after 20
or 100 epochs without noise).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from densekit.errors import InputError

if TYPE_CHECKING:
    import torch

FORMAT = "densekit-binary-pv"
CONFIG_FILE = "config.json"
VOCABULARY_FILE = "vocabulary.txt"
WEIGHTS_FILE = "model.safetensors"
MODEL_FILES = (CONFIG_FILE, VOCABULARY_FILE, WEIGHTS_FILE)
_WORD = re.compile(r"\w+")
_INFER_BLOCK = 256  # texts inferred together: bounds the (texts x vocabulary) count matrix


@dataclass(frozen=True)
class BinaryPVConfig:
    """The shape of a model and how it reads text and infers new codes."""

    bits: int
    real_dim: int = 0  # > 0: the real-valued + binary variant
    ngrams: int = 1  # 2: adjacent word pairs are terms too
    inference_steps: int = 100
    inference_lr: float = 0.05

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or self.bits < 8:
            raise InputError(f"bits must be a whole multiple of 8, at least 8; got {self.bits!r}")
        if self.bits % 8:
            raise InputError(f"bits {self.bits}: give a multiple of 8 (codes are packed bytes)")
        if self.real_dim < 0:
            raise InputError(f"real_dim must be 0 (binary only) or more; got {self.real_dim}")
        if self.ngrams not in (1, 2):
            raise InputError(f"ngrams must be 1 (words) or 2 (words and pairs); got {self.ngrams}")

    @property
    def document_dim(self) -> int:
        """Parameters per document: the real vector, or the code layer's inputs."""
        return self.real_dim or self.bits


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_spans(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in _WORD.finditer(text)]


def terms(text: str, ngrams: int) -> list[str]:
    """The terms a text's words give: each word and, with ``ngrams`` 2, each adjacent pair."""
    found = words(text)
    if ngrams == 2:
        found += [f"{a} {b}" for a, b in itertools.pairwise(found)]
    return found


def weighted_counts(rows: Sequence[np.ndarray], term_weights: np.ndarray) -> torch.Tensor:
    """A dense batch of term counts, each occurrence counted at its term's weight."""
    import torch

    weights = torch.from_numpy(term_weights)
    counts = torch.zeros(len(rows), len(term_weights))
    for position, ids in enumerate(rows):
        if len(ids):
            index = torch.from_numpy(ids)
            counts[position].index_add_(0, index, weights[index])
    return counts


class BinaryPVNetwork:
    """The word predictor(s) and code layer, and PV-DBOW's loss through them."""

    def __init__(self, config: BinaryPVConfig, vocabulary_size: int) -> None:
        import torch

        self.config = config
        self.words_from_code = torch.nn.Linear(config.bits, vocabulary_size)
        # One module of the layers: its state dict names each tensor "layer.weight"/".bias".
        self.layers = torch.nn.ModuleDict({"words_from_code": self.words_from_code})
        if config.real_dim:
            self.code_from_real = torch.nn.Linear(config.real_dim, config.bits)
            self.words_from_real = torch.nn.Linear(config.real_dim, vocabulary_size)
            self.layers.update(
                {"code_from_real": self.code_from_real, "words_from_real": self.words_from_real}
            )

    def code_inputs(self, documents: torch.Tensor) -> torch.Tensor:
        """The code layer's pre-activations: a bit is 1 where this is above 0."""
        return self.code_from_real(documents) if self.config.real_dim else documents

    def codes(self, documents: torch.Tensor, noise: float = 0.0) -> torch.Tensor:
        """Bits in the forward pass, the sigmoid's gradient in the backward pass."""
        import torch

        inputs = self.code_inputs(documents)
        if noise:
            inputs = inputs + noise * torch.randn_like(inputs)
        soft = torch.sigmoid(inputs)
        return soft + ((inputs > 0).to(soft.dtype) - soft).detach()

    def loss(
        self, documents: torch.Tensor, counts: torch.Tensor, noise: float = 0.0
    ) -> torch.Tensor:
        """Each document's weighted mean negative log-likelihood of its terms (one per row)."""
        import torch

        total = counts.sum(dim=1).clamp_min(1e-9)

        def nll(logits: torch.Tensor) -> torch.Tensor:
            return -(counts * torch.log_softmax(logits, dim=1)).sum(dim=1) / total

        per_document = nll(self.words_from_code(self.codes(documents, noise)))
        if self.config.real_dim:
            per_document = per_document + nll(self.words_from_real(documents))
        return per_document


class BinaryPVModel:
    """A trained model: vocabulary, term weights and network."""

    def __init__(
        self,
        config: BinaryPVConfig,
        vocabulary: list[str],
        term_weights: np.ndarray,
        network: BinaryPVNetwork,
    ) -> None:
        self.config = config
        self.vocabulary = vocabulary
        self.term_ids = {term: i for i, term in enumerate(vocabulary)}
        self.term_weights = term_weights.astype(np.float32)
        self.network = network
        network.layers.requires_grad_(False)  # a model infers: only a text's own parameters learn

    def term_counts(self, texts: Sequence[str]) -> torch.Tensor:
        """Weighted term counts, one row per text (terms outside the vocabulary dropped)."""
        ids = self.term_ids
        rows = [
            np.array([ids[t] for t in terms(text, self.config.ngrams) if t in ids], dtype=np.int64)
            for text in texts
        ]
        return weighted_counts(rows, self.term_weights)

    def infer(self, texts: Sequence[str]) -> np.ndarray:
        """Parameters fitted to each text with the network frozen. Adam's updates are
        per element, so a text's result does not depend on the others in its batch."""
        blocks = [
            self._infer_block(texts[start : start + _INFER_BLOCK])
            for start in range(0, len(texts), _INFER_BLOCK)
        ]
        return np.vstack(blocks) if blocks else np.zeros((0, self.config.document_dim), "f4")

    def _infer_block(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        counts = self.term_counts(texts)
        parameters = torch.zeros(len(texts), self.config.document_dim, requires_grad=True)
        optimizer = torch.optim.Adam([parameters], lr=self.config.inference_lr)
        for _ in range(self.config.inference_steps):
            optimizer.zero_grad()
            self.network.loss(parameters, counts).sum().backward()
            optimizer.step()
        return parameters.detach().numpy()

    def code_bits(self, parameters: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            inputs = self.network.code_inputs(torch.from_numpy(parameters))
        return (inputs > 0).numpy()

    def save(self, folder: Path, report: dict[str, object]) -> None:
        from safetensors.torch import save_file

        config = {"format": FORMAT, **asdict(self.config), "training": report}
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
        (folder / VOCABULARY_FILE).write_text(
            "".join(
                f"{term}\t{weight:.9g}\n"
                for term, weight in zip(self.vocabulary, self.term_weights.tolist(), strict=True)
            ),
            encoding="utf-8",
        )
        save_file(self.network.layers.state_dict(), str(folder / WEIGHTS_FILE))

    @classmethod
    def load(cls, folder: Path) -> BinaryPVModel:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
        if missing:
            raise InputError(
                f"{folder}: not a trained Binary PV model (missing {', '.join(missing)}); "
                "train one first: densekit train-bpv CORPUS --out DIR"
            )
        try:
            settings = json.loads((folder / CONFIG_FILE).read_text())
        except (ValueError, UnicodeDecodeError):
            settings = None
        if not isinstance(settings, dict) or settings.get("format") != FORMAT:
            raise InputError(
                f"{folder / CONFIG_FILE}: not a Binary PV model config; train the model again "
                "(densekit train-bpv ... --overwrite)"
            )
        fields = BinaryPVConfig.__dataclass_fields__
        config = BinaryPVConfig(**{k: v for k, v in settings.items() if k in fields})
        vocabulary, weights = _read_vocabulary(folder / VOCABULARY_FILE)
        network = BinaryPVNetwork(config, len(vocabulary))
        try:
            network.layers.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        except (OSError, RuntimeError, ValueError, SafetensorError) as error:
            raise InputError(
                f"{folder / WEIGHTS_FILE}: unreadable or not this model's weights ({error}); "
                "train the model again (densekit train-bpv ... --overwrite)"
            ) from None
        return cls(config, vocabulary, weights, network)


def _read_vocabulary(path: Path) -> tuple[list[str], np.ndarray]:
    vocabulary: list[str] = []
    weights: list[float] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        term, tab, weight = line.rpartition("\t")
        try:
            weights.append(float(weight))
        except ValueError:
            tab = ""
        if not tab:
            raise InputError(f"{path}:{number}: expected 'term<TAB>weight'")
        vocabulary.append(term)
    return vocabulary, np.asarray(weights, dtype=np.float32)
