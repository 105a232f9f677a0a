"""A rerank stage of stored token vectors: another retriever's candidates rescored exactly by
MaxSim over the collection's token vectors (no text is read, no document is encoded again).

``kind = "multivector"`` in a pipeline's ``[[rerank]]``: dense or BM25 candidates, ordered by
late interaction, the cheap way to ColBERT quality where a token index is not wanted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from densekit.errors import CollectionError

if TYPE_CHECKING:
    from densekit.store.collection import StoredCollection
    from densekit.store.sharded import ShardedStore


class TokenRescorer:
    """MaxSim of queries with given document rows of one collection (sharded or not)."""

    def __init__(self, collection: StoredCollection | ShardedStore, where: str) -> None:
        if "multivector" not in collection.retrievers:
            raise CollectionError(
                f"{where}: a multivector rerank reads the collection's token vectors, and "
                f"{collection.directory} has none; rebuild it with --multivector MODEL"
            )
        self.collection = collection
        self.name = "token vectors (MaxSim)"

    def score_rows(self, queries: Sequence[str], rows: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each query's MaxSim with each of its ``rows`` (global rows of the collection)."""
        from densekit.retrieve.scatter_gather import ShardSearch, partial_results, shards_of
        from densekit.store.sharded import ShardedStore

        collection = self.collection
        vectors = collection.multivector_encoder.encode_queries(queries)
        if not isinstance(collection, ShardedStore):
            return ShardSearch(collection).maxsim(vectors, list(rows))

        count = len(collection.shards)
        asked = [
            (vectors, [r[r % count == shard] // count for r in rows]) for shard in range(count)
        ]
        with partial_results(allowed=False):  # a candidate's score needs its own shard
            answers = shards_of(collection).ask_each("maxsim", asked)
        scores = []
        for number, r in enumerate(rows):
            found = np.empty(len(r), dtype=np.float32)
            for shard, answer in enumerate(answers):
                found[r % count == shard] = answer[number]
            scores.append(found)
        return scores
