"""One embedding model loaded from its folder: ONNX Runtime for the forward pass, the
``tokenizers`` library for WordPiece, numpy for pooling and normalisation.

A model folder (a path, or ``hf:org/name`` in the hub's cache) is what a hub's ONNX export of
a BERT model holds: ``model.onnx`` (or
``onnx/model.onnx``), ``tokenizer.json`` and ``config.json`` (``hidden_size``, and
``max_position_embeddings`` when the window is under 512). The graph takes ``input_ids``,
``attention_mask`` and, when it declares it, ``token_type_ids``, and gives
``last_hidden_state`` (or its first output), ``[batch, sequence, hidden]``.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._types import MAX_TOKENS, AiError, Pooling

_MODEL_FILES = ("model.onnx", "onnx/model.onnx")
#: ``[ai.models]`` values naming a model in the Hugging Face hub's cache.
HUB_PREFIX = "hf:"
_HUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def hub_cache() -> Path:
    """The Hugging Face hub's cache on this machine: ``HF_HUB_CACHE``, else
    ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def resolve_folder(reference: str | Path) -> Path:
    """A model's folder: a path as it is, or ``hf:org/name`` (``hf:org/name@revision``, a
    commit or a ref such as ``main``, the default) looked up in this machine's hub cache
    (a snapshot ``huggingface-cli download`` made). Nothing is downloaded: a model missing
    from the cache is an AiError saying how to fetch it."""
    text = str(reference)
    if not text.startswith(HUB_PREFIX):
        return Path(reference)
    name, _, revision = text[len(HUB_PREFIX) :].partition("@")
    revision = revision or "main"
    if not _HUB_NAME.fullmatch(name) or ".." in name or not _REVISION.fullmatch(revision):
        raise AiError(f"{text!r}: expected hf:org/name or hf:org/name@revision")
    repo = hub_cache() / ("models--" + name.replace("/", "--"))
    ref = repo / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision
    snapshot = repo / "snapshots" / commit
    if not _REVISION.fullmatch(commit) or not snapshot.is_dir():
        raise AiError(
            f"{text}: not in the hub cache ({repo}, revision {revision}); raydo does not"
            f" download models: fetch it first (huggingface-cli download {name})"
        )
    return snapshot


def model_file(folder: Path) -> Path:
    """The ONNX file of a model folder; AiError naming the folder when it has none."""
    for name in _MODEL_FILES:
        if (folder / name).is_file():
            return folder / name
    raise AiError(f"model folder {folder} holds no model.onnx (nor onnx/model.onnx)")


class EmbeddingModel:
    """A loaded model. :meth:`embed` is synchronous and thread-safe (ONNX Runtime's ``run`` is;
    the tokenizer is used under a lock); call it off the event loop."""

    def __init__(self, folder: str | Path, *, threads: int | None = None) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        folder = resolve_folder(folder)
        self.folder = folder
        if not folder.is_dir():
            raise AiError(f"model folder {folder} does not exist")
        onnx_file = model_file(folder)
        if not (folder / "tokenizer.json").is_file():
            raise AiError(f"model folder {folder} holds no tokenizer.json")
        config = _read_config(folder)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(
                str(onnx_file), options, providers=_providers(onnxruntime)
            )
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:
            raise AiError(f"model folder {folder}: cannot load it: {exc}") from exc
        self.max_tokens = min(MAX_TOKENS, int(config.get("max_position_embeddings", MAX_TOKENS)))
        self._tokenizer.enable_truncation(self.max_tokens)
        pad = self._tokenizer.token_to_id("[PAD]")
        self._tokenizer.enable_padding(pad_id=pad or 0, pad_token="[PAD]")
        self._inputs = {i.name for i in self.session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - self._inputs
        if missing:
            raise AiError(f"model {onnx_file} does not take {sorted(missing)} (not BERT-shaped)")
        outputs = [o.name for o in self.session.get_outputs()]
        self._output = "last_hidden_state" if "last_hidden_state" in outputs else outputs[0]
        self.dimensions = int(config.get("hidden_size") or self._probe_dimensions())
        self._lock = threading.Lock()
        self.forward_passes = 0

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The graph's inputs for ``texts``: padded to the longest, each cut to the window."""
        with self._lock:
            encodings = self._tokenizer.encode_batch(list(texts))
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        }
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        return feed

    def embed(self, texts: Sequence[str], pooling: Pooling) -> np.ndarray:
        """``[len(texts), dimensions]`` float32, each row of length 1 (L2), in one forward pass."""
        feed = self.tokenize(texts)
        self.forward_passes += 1
        hidden = self.session.run([self._output], feed)[0]
        return pool(hidden, feed["attention_mask"], pooling)

    def _probe_dimensions(self) -> int:
        return int(self.embed(["a"], "cls").shape[1])


def pool(hidden: np.ndarray, mask: np.ndarray, pooling: Pooling) -> np.ndarray:
    """Pool ``[batch, sequence, hidden]`` to ``[batch, hidden]`` (``mean`` over the attended
    tokens, or the ``cls`` token's state), then scale each row to length 1 as bge does."""
    if pooling == "cls":
        vectors = hidden[:, 0, :]
    else:
        weights = mask[:, :, None].astype(np.float32)
        vectors = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalised: np.ndarray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return normalised


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AiError(f"model folder {folder}: config.json is not JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise AiError(f"model folder {folder}: config.json is not a JSON object")
    return config


def _providers(onnxruntime: Any) -> list[str]:
    available = set(onnxruntime.get_available_providers())
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
