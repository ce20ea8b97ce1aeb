"""The model binding (``[ai]``, ``env.AI``): Workers AI's ``run(model, inputs)``.

::

    emb = await env.AI.run("@cf/baai/bge-small-en-v1.5", {"text": ["hello"]})
    emb["shape"], emb["data"][0]   # [1, 384], a vector of length 1

The client is :class:`Ai` (``_client``), which checks the inputs (``_inputs``) and hands
the texts to a runner (``_runner``: in this process, or a pool of Ray actors), each replica
batching concurrent callers' texts into one forward pass (``_batcher``); a model is a folder
loaded by ``_model`` (ONNX Runtime and the ``tokenizers`` library); text models go to an
OpenAI-compatible endpoint (``_text``); ``_plan`` turns ``[ai]`` into the binding.
"""

from ._batcher import POOL_KEYS, Batching, ModelServer
from ._client import Ai
from ._model import EmbeddingModel, pool
from ._plan import ai_binding, model_folders, plan
from ._runner import EmbeddingRunner, LocalRunner, PoolRunner
from ._text import DEFAULT_MAX_TOKENS, AiUpstreamError, TextClient, TextEndpoint, TextStream
from ._types import (
    DEFAULT_POOLING,
    EMBEDDING_MODELS,
    MAX_TEXTS,
    MAX_TOKENS,
    POOLINGS,
    AiError,
    AiOverloaded,
    Pooling,
)

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_POOLING",
    "EMBEDDING_MODELS",
    "MAX_TEXTS",
    "MAX_TOKENS",
    "POOLINGS",
    "POOL_KEYS",
    "Ai",
    "AiError",
    "AiOverloaded",
    "AiUpstreamError",
    "Batching",
    "EmbeddingModel",
    "EmbeddingRunner",
    "LocalRunner",
    "ModelServer",
    "PoolRunner",
    "Pooling",
    "TextClient",
    "TextEndpoint",
    "TextStream",
    "ai_binding",
    "model_folders",
    "plan",
    "pool",
]
