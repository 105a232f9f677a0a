"""The ground floor: how densekit reads and writes files, below every other package.

Atomic writes and fsync (:mod:`.durability`), text decoding (:mod:`.text`), the rules of an id
(:mod:`.ids`), embedding shards (:mod:`.shards`), vector files made elsewhere (:mod:`.vectors`)
and the folder `densekit encode` writes (:mod:`.encode_folder`). Nothing here imports another
densekit package but :mod:`densekit.errors`.
"""
