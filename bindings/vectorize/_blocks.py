"""Contiguous copies of some rows' vectors, for the exact scans of narrowed queries.

A query narrowed to a namespace or a filter of a few thousand rows scans them exactly;
scanning them in place means gathering those rows out of the whole matrix first, and that
gather (a row here, a row there, across the matrix) cost ten times the arithmetic: measured
here at 384 dimensions, 10,000 rows of 100,000, 5.3 ms to gather and score, 0.48 ms to score
a contiguous copy. So the first such query keeps its gathered rows as a block, and the next
queries of the same namespace (or filter) score the block.

A block is never trusted beyond what it was made from. A namespace's block goes when a row of
the namespace is written or deleted; a filter's block holds the table's write count when it
was made and is used only while that count stands and the query's mask selects exactly its
rows (a metadata index made since changes what a filter selects). A query that finds no good
block gathers afresh, as it would without blocks. The blocks together stay within a share of
the rows in use, least recently used leaving first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

#: The blocks together hold at most this share of the bytes of the rows in use.
BLOCKS_SHARE = 0.5
#: A namespace of fewer rows is gathered each time: its gather costs next to nothing.
BLOCK_MIN_ROWS = 1024


@dataclass(frozen=True)
class Block:
    """Some rows (ascending), their vectors as one contiguous float32 matrix, their
    lengths, and the table's write count when they were copied."""

    rows: Array
    matrix: Array
    norms: Array
    writes: int = 0

    @property
    def nbytes(self) -> int:
        return int(self.rows.nbytes + self.matrix.nbytes + self.norms.nbytes)


class Blocks:
    """Blocks by key (a namespace's code, or a filter's key), least recently used first."""

    def __init__(self) -> None:
        self._blocks: OrderedDict[Hashable, Block] = OrderedDict()
        self.nbytes = 0

    def get(self, key: Hashable) -> Block | None:
        """The block of ``key``, now the most recently used; None when it has none."""
        block = self._blocks.get(key)
        if block is not None:
            self._blocks.move_to_end(key)
        return block

    def keep(self, key: Hashable, block: Block, budget: int) -> None:
        """Keep ``block`` for ``key``, then let the least recently used blocks go until all
        fit in ``budget`` bytes (``block`` itself too, when it alone is over)."""
        self.drop(key)
        self._blocks[key] = block
        self.nbytes += block.nbytes
        while self.nbytes > budget and self._blocks:
            _, gone = self._blocks.popitem(last=False)
            self.nbytes -= gone.nbytes

    def drop(self, key: Hashable) -> None:
        """Forget the block of ``key`` (for a namespace: a row of it was written or deleted)."""
        gone = self._blocks.pop(key, None)
        if gone is not None:
            self.nbytes -= gone.nbytes

    def clear(self) -> None:
        self._blocks.clear()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._blocks)
