"""Tiny BERT-shaped embedding models built on the spot, for tests and bench/embeddings.py.

:func:`build_model` writes a model folder in the layout a hub's ONNX export uses
(``model.onnx``, ``tokenizer.json``, ``config.json``): a WordPiece tokenizer over a small
vocabulary (every word of :data:`WORDS` is one token) and an ONNX graph with BERT's inputs
(``input_ids``, ``attention_mask``, ``token_type_ids``) and output (``last_hidden_state``):
token, position and type embeddings, then ``layers`` encoder layers (masked self-attention
and a feed-forward block, each with a residual and a layer norm), random weights. Nothing is
downloaded: ``onnx.helper`` and ``tokenizers`` build everything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
#: The fixture's words: each one token of the vocabulary.
WORDS = [
    "the", "a", "cat", "dog", "sat", "on", "mat", "orange", "cloud", "llama", "story",
    "about", "hugging", "emoji", "is", "this", "hello", "world", "rain", "sun", "river",
    "stone", "tree", "red", "blue", "green", "fast", "slow", "big", "small", "one", "two",
]  # fmt: skip
MAX_POSITIONS = 512


def write_tokenizer(path: Path, words: list[str] = WORDS) -> None:
    """A BERT WordPiece tokenizer (lowercasing, [CLS] ... [SEP]) saved as tokenizer.json."""
    vocab = {token: i for i, token in enumerate([*SPECIALS, *words])}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.save(str(path))


def _graph(vocab: int, hidden: int, layers: int, ffn: int, seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits: list[TensorProto] = []
    nodes: list[onnx.NodeProto] = []
    count = [0]

    def weight(name: str, *shape: int, scale: float = 0.2) -> str:
        inits.append(numpy_helper.from_array(rng.normal(0, scale, shape).astype(np.float32), name))
        return name

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        count[0] += 1
        out = f"{op.lower()}_{count[0]}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def layer_norm(x: str, prefix: str) -> str:
        gamma = const(f"{prefix}.gamma", np.ones(hidden, np.float32))
        beta = const(f"{prefix}.beta", np.zeros(hidden, np.float32))
        return node("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-12)

    # Embeddings: token + position (0..seq-1) + type, then a layer norm.
    tokens = node("Gather", [weight("embeddings.word", vocab, hidden), "input_ids"])
    shape = node("Shape", ["input_ids"])
    seq = node("Gather", [shape, const("one_index", np.array(1, np.int64))], axis=0)
    positions = node(
        "Range", [const("zero", np.array(0, np.int64)), seq, const("step", np.array(1, np.int64))]
    )
    placed = node("Gather", [weight("embeddings.position", MAX_POSITIONS, hidden), positions])
    typed = node("Gather", [weight("embeddings.type", 2, hidden), "token_type_ids"])
    x = layer_norm(node("Add", [node("Add", [tokens, placed]), typed]), "embeddings.norm")

    # The additive mask: 0 where attended, -10000 on padding, shaped [batch, 1, seq].
    mask = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask = node("Unsqueeze", [mask, const("axis_1", np.array([1], np.int64))])
    mask = node(
        "Mul",
        [
            node("Sub", [const("one_f", np.array(1.0, np.float32)), mask]),
            const("neg", np.array(-1e4, np.float32)),
        ],
    )
    for i in range(layers):
        p = f"layer{i}"
        q = node("MatMul", [x, weight(f"{p}.q", hidden, hidden)])
        k = node("MatMul", [x, weight(f"{p}.k", hidden, hidden)])
        v = node("MatMul", [x, weight(f"{p}.v", hidden, hidden)])
        scores = node("MatMul", [q, node("Transpose", [k], perm=[0, 2, 1])])
        scores = node("Div", [scores, const(f"{p}.scale", np.array(hidden**0.5, np.float32))])
        attended = node("MatMul", [node("Softmax", [node("Add", [scores, mask])], axis=-1), v])
        out = node("MatMul", [attended, weight(f"{p}.o", hidden, hidden)])
        x = layer_norm(node("Add", [x, out]), f"{p}.norm1")
        up = node("Tanh", [node("MatMul", [x, weight(f"{p}.up", hidden, ffn)])])
        down = node("MatMul", [up, weight(f"{p}.down", ffn, hidden)])
        x = layer_norm(node("Add", [x, down]), f"{p}.norm2")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))

    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    output = helper.make_tensor_value_info(
        "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden]
    )
    graph = helper.make_graph(nodes, "tiny_bert", inputs, [output], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_model(
    folder: Path,
    *,
    hidden: int = 32,
    layers: int = 1,
    ffn: int | None = None,
    vocab_size: int | None = None,
    seed: int = 0,
) -> Path:
    """Write a model folder (``model.onnx``, ``tokenizer.json``, ``config.json``) and return it.

    The tokenizer knows :data:`WORDS`; ``vocab_size`` (at least its size) pads the embedding
    table, as a real model's is larger than what a test types. ``hidden=384, layers=12,
    ffn=1536, vocab_size=30522`` is bge-small's shape.
    """
    folder.mkdir(parents=True, exist_ok=True)
    write_tokenizer(folder / "tokenizer.json")
    vocab = max(vocab_size or 0, len(SPECIALS) + len(WORDS))
    model = _graph(vocab, hidden, layers, ffn or 2 * hidden, seed)
    onnx.save(model, str(folder / "model.onnx"))
    config = {
        "model_type": "bert",
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "max_position_embeddings": MAX_POSITIONS,
        "vocab_size": vocab,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder
