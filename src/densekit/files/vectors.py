"""Reading vectors made elsewhere: `.npy` (rows in corpus order, or with an ids file), Parquet
with an id column and a vector column, or a `densekit encode` output folder.

Every way such a file can be wrong gets its own message naming the file and the row or id:
not 2-D, no ids, ids repeated, NaN or infinite values, vectors of the wrong width.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from densekit.errors import InputError, MissingDependencyError
from densekit.files.encode_folder import load_embeddings
from densekit.files.ids import check_id, stored_id, text_id
from densekit.files.text import decoded_lines, decoded_text

ID_COLUMNS = ("id", "_id", "doc_id", "query_id")
VECTOR_COLUMNS = ("vector", "embedding", "emb")


@dataclass(frozen=True)
class VectorTable:
    """Vectors by id; ``ids`` is None for an `.npy` file read without ids (rows in order)."""

    source: str
    ids: list[str] | None
    vectors: np.ndarray

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    def by_id(self) -> dict[str, int]:
        if self.ids is None:
            raise InputError(f"{self.source}: has no ids; give them with an ids file")
        rows: dict[str, int] = {}
        for row, key in enumerate(self.ids):
            if key in rows:
                raise InputError(
                    f"{self.source}: id {key!r} appears twice (rows {rows[key]} and {row}); "
                    "each id needs exactly one vector"
                )
            rows[key] = row
        return rows

    def check_dimension(self, expected: int, what: str) -> None:
        if self.dimension != expected:
            raise InputError(
                f"{self.source}: vectors have {self.dimension} dimensions, but {what} has "
                f"{expected}; they must come from the same model"
            )


def read_vectors(path: str | Path, ids_path: str | Path | None = None) -> VectorTable:
    """The vectors in ``path`` (and their ids, from the file itself or from ``ids_path``)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such vectors file")
    if path.is_dir():
        table = _read_encode_folder(path)
    elif path.suffix == ".npy":
        table = VectorTable(str(path), None, _load_npy(path))
    elif path.suffix in (".parquet", ".pq"):
        table = _read_parquet(path)
    else:
        raise InputError(
            f"{path}: unknown vectors format; give a .npy array, a .parquet file with "
            "id and vector columns, or a densekit encode folder"
        )
    if ids_path is not None:
        ids = read_ids(Path(ids_path))
        if len(ids) != len(table.vectors):
            raise InputError(
                f"{ids_path}: {len(ids)} ids for {len(table.vectors)} vectors in {path}; "
                "give one id per row"
            )
        table = VectorTable(table.source, ids, table.vectors)
    _check_values(table)
    return table


def read_ids(path: Path, *, stored: bool = False) -> list[str]:
    """Ids one per line (`.txt`; the whitespace around each is dropped), or a JSON list of
    strings (`.json`). New ids follow :mod:`densekit.files.ids`; ``stored`` ids (to delete)
    need only be strings, as a collection may hold ids written before those rules."""
    if not path.is_file():
        raise InputError(f"{path}: no such ids file")
    if path.suffix == ".json":
        try:
            ids = json.loads(decoded_text(path))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
        except RecursionError:
            raise InputError(f"{path}: JSON nested too deeply to read; give a flat list") from None
        if not isinstance(ids, list):
            raise InputError(f"{path}: expected a JSON list of ids, got {type(ids).__name__}")
        check = stored_id if stored else check_id
        return [check(value, f"{path}: item {index}") for index, value in enumerate(ids)]
    ids = []
    for number, line in decoded_lines(path):
        if not line.strip():
            raise InputError(f"{path}:{number}: empty id; give one id per line")
        ids.append(line.strip() if stored else text_id(line, f"{path}:{number}"))
    return ids


def _load_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable .npy array ({exc})") from None
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"{path}: expected a 2-D array (rows x dimensions), got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{path}: expected floating-point vectors, got {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _read_parquet(path: Path) -> VectorTable:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("pyarrow", "parquet") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    names = table.column_names
    id_column = next((c for c in ID_COLUMNS if c in names), None)
    vector_column = next((c for c in VECTOR_COLUMNS if c in names), None)
    if id_column is None or vector_column is None:
        raise InputError(
            f"{path}: expected an id column ({'/'.join(ID_COLUMNS)}) and a vector column "
            f"({'/'.join(VECTOR_COLUMNS)}); found {', '.join(names)}"
        )
    if table.num_rows == 0:
        raise InputError(f"{path}: no rows; expected one vector per id")
    ids = [
        check_id(value, f"{path}: row {row}, column {id_column!r}")
        for row, value in enumerate(table.column(id_column).to_pylist())
    ]
    rows = table.column(vector_column).to_pylist()
    widths = {len(r) if r is not None else 0 for r in rows}
    if len(widths) != 1 or 0 in widths:
        row = next(i for i, r in enumerate(rows) if r is None or len(r) != len(rows[0] or []))
        raise InputError(
            f"{path}: row {row} (id {ids[row]!r}) has a vector of another length than row 0; "
            "every vector needs the same dimensions"
        )
    return VectorTable(str(path), ids, np.asarray(rows, dtype=np.float32))


def _read_encode_folder(path: Path) -> VectorTable:
    ids, vectors = load_embeddings(path)
    return VectorTable(str(path), ids, np.ascontiguousarray(vectors, dtype=np.float32))


def _check_values(table: VectorTable) -> None:
    finite = np.isfinite(table.vectors).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        named = f" (id {table.ids[row]!r})" if table.ids is not None else ""
        raise InputError(
            f"{table.source}: row {row}{named} holds NaN or infinity; "
            f"{int((~finite).sum())} rows in all"
        )
    if (np.linalg.norm(table.vectors, axis=1) == 0).any():
        row = int(np.argmin(np.linalg.norm(table.vectors, axis=1)))
        raise InputError(f"{table.source}: row {row} is all zeros, which has no direction")
