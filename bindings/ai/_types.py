"""The model binding's names, limits and errors: the embedding models Workers AI serves and
what a call to them may hold."""

from __future__ import annotations

from typing import Literal

from raydo.actors import Overloaded

Pooling = Literal["mean", "cls"]
POOLINGS: tuple[str, ...] = ("mean", "cls")
#: Workers AI's default pooling for the bge models.
DEFAULT_POOLING: Pooling = "mean"

#: The embedding models Workers AI names, with their output dimensions.
EMBEDDING_MODELS: dict[str, int] = {
    "@cf/baai/bge-small-en-v1.5": 384,
    "@cf/baai/bge-base-en-v1.5": 768,
    "@cf/baai/bge-large-en-v1.5": 1024,
}
#: Texts in one call, as on Workers AI.
MAX_TEXTS = 100
#: Tokens a text is cut to (the bge models' window, [CLS] and [SEP] included).
MAX_TOKENS = 512
#: Bytes of one text before it is tokenized: a bound on the tokenizer's work, far above
#: what 512 tokens hold.
MAX_TEXT_BYTES = 1 << 20


class AiError(ValueError):
    """A call to ``env.AI.run`` was refused: an unknown model, malformed input, a limit passed,
    a model folder that cannot be loaded, or (for text models) the upstream's failure."""


class AiOverloaded(Overloaded):
    """The model's queue is full; the texts were not queued. Do not retry at once."""


__all__ = [
    "DEFAULT_POOLING",
    "EMBEDDING_MODELS",
    "MAX_TEXTS",
    "MAX_TEXT_BYTES",
    "MAX_TOKENS",
    "POOLINGS",
    "AiError",
    "AiOverloaded",
    "Pooling",
]
