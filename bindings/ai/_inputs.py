"""What ``env.AI.run`` accepts, checked before any model is touched."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ._types import DEFAULT_POOLING, MAX_TEXT_BYTES, MAX_TEXTS, POOLINGS, AiError, Pooling

_EMBEDDING_KEYS = ("text", "pooling")


def check_inputs(model: str, inputs: object) -> Mapping[str, Any]:
    if not isinstance(inputs, Mapping):
        raise AiError(f"{model}: inputs must be a dict, got {type(inputs).__name__}")
    for key in inputs:
        if not isinstance(key, str):
            raise AiError(f"{model}: input keys must be strings, got {key!r}")
    return inputs


def embedding_inputs(model: str, inputs: Mapping[str, Any]) -> tuple[list[str], Pooling]:
    """The texts and pooling of an embedding call: ``text`` a string or a list of 1 to 100
    strings, ``pooling`` ``"mean"`` (the default) or ``"cls"``; AiError saying what is wrong."""
    unknown = sorted(set(inputs) - set(_EMBEDDING_KEYS))
    if unknown:
        raise AiError(f"{model}: unknown inputs {unknown}; an embedding model takes text, pooling")
    if "text" not in inputs:
        raise AiError(f"{model}: missing input 'text' (a string or a list of strings)")
    text = inputs["text"]
    if isinstance(text, str):
        texts = [text]
    elif isinstance(text, list | tuple):
        texts = list(text)
        if not texts:
            raise AiError(f"{model}: 'text' is an empty list; give 1 to {MAX_TEXTS} strings")
        if len(texts) > MAX_TEXTS:
            raise AiError(
                f"{model}: 'text' holds {len(texts)} strings, more than the {MAX_TEXTS} a call"
                " may embed; split it into several calls"
            )
        for i, item in enumerate(texts):
            if not isinstance(item, str):
                raise AiError(f"{model}: text[{i}] is {type(item).__name__}, not a string")
    else:
        raise AiError(
            f"{model}: 'text' must be a string or a list of strings, got {type(text).__name__}"
        )
    for i, item in enumerate(texts):
        if len(item.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
            raise AiError(
                f"{model}: text[{i}] is over {MAX_TEXT_BYTES} bytes (only its first 512 tokens"
                " are embedded anyway); cut it before the call"
            )
    pooling = inputs.get("pooling", DEFAULT_POOLING)
    if pooling not in POOLINGS:
        raise AiError(f"{model}: pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    return texts, cast(Pooling, pooling)
