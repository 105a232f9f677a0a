"""Checksums of a collection's files: recorded when a write commits, verified on request.

Each commit writes ``checksums.json`` into its generation (an adapter into its own folder): a
BLAKE2b digest of every file the manifest lists, the shared files' carried over from the
commit before. The file is listed in the manifest like any other, so opening (which checks
sizes only, and stays fast) needs nothing new, and the manifest stays readable by releases
that predate checksums. :func:`verify_collection` reads every byte and says which file
changed and what to do; collections written before checksums verify as "no checksums
recorded" for their files.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from densekit.errors import CollectionError
from densekit.files.durability import writing
from densekit.store.layout import LOCK_FILE, directory_lock
from densekit.store.leftovers import Finding, clear_leftovers, find_leftovers
from densekit.store.manifest import MANIFEST_NAME, Manifest, read_manifest
from densekit.store.manifest_checks import check_inside

CHECKSUMS_FILE = "checksums.json"
ALGORITHM = "blake2b-128"
_FORMAT = "densekit-checksums"
_ATTEMPTS = 3
# The last report per collection directory, for StoredCollection.info (a server's info endpoint).
_LATEST: dict[str, tuple[str, IntegrityReport]] = {}  # directory: (version, report)
_LATEST_LOCK = threading.Lock()


def file_checksum(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def write_checksums(folder: Path, checksums: dict[str, str]) -> Path:
    """Write ``folder/checksums.json``; a commit makes it durable with the rest of the folder.
    A plain write: the folder is not published yet, and a rerun rewrites it."""
    path = folder / CHECKSUMS_FILE
    record = {"format": _FORMAT, "algorithm": ALGORITHM, "files": dict(sorted(checksums.items()))}
    with writing(path, discard=True):
        path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return path


def read_checksums(path: Path) -> dict[str, str]:
    """The checksums recorded in ``path``; ValueError when it is not a checksums file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:  # nested thousands deep: not one densekit wrote
        raise ValueError("not a densekit checksums file (nested too deeply)") from None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ValueError("not a densekit checksums file")
    if data.get("algorithm") != ALGORITHM:
        raise ValueError(f"checksums by {data.get('algorithm')!r}, this densekit reads {ALGORITHM}")
    files = data.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise ValueError("its files are not a mapping of names to checksums")
    return files


def record_checksums(directory: Path, manifest: Manifest) -> Manifest:
    """Checksum the files ``manifest``'s own generation holds, carry over those of the files it
    shares with the published collection, write them to the generation and list that file."""
    generation = manifest.generation
    own = f"{generation}/{CHECKSUMS_FILE}"
    earlier = _published_checksums(directory)
    checksums = {}
    for name in manifest.files:
        if name == own:
            continue  # from an interrupted run of this build: rewritten below
        if name.startswith(f"{generation}/"):
            checksums[name] = file_checksum(directory / name)
        elif name in earlier:
            checksums[name] = earlier[name]
    path = write_checksums(directory / generation, checksums)
    return replace(manifest, files={**manifest.files, own: path.stat().st_size})


def record_folder_checksums(folder: Path) -> None:
    """Checksum every file of ``folder`` (an adapter's) into ``folder/checksums.json``."""
    checksums = {
        path.relative_to(folder).as_posix(): file_checksum(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != CHECKSUMS_FILE
    }
    write_checksums(folder, checksums)


def _published_checksums(directory: Path) -> dict[str, str]:
    try:
        published = read_manifest(directory)
        return read_checksums(directory / published.generation / CHECKSUMS_FILE)
    except (CollectionError, OSError, ValueError):
        return {}  # none published, or written before checksums: nothing to carry over


@dataclass(frozen=True)
class IntegrityReport:
    """What :func:`verify_collection` found: damaged files, files without a recorded checksum,
    and leftovers (which are not damage: the next write or ``check --repair`` removes them)."""

    directory: str
    generation: str
    files: int  # the files the manifest names, but for the checksum records
    bytes_read: int
    verified: int
    unrecorded: list[str]
    damaged: list[Finding]
    leftovers: list[Finding]
    advice: str
    seconds: float
    write_in_progress: bool = False
    algorithm: str = ALGORITHM
    opened: bool | None = None  # with open_check: whether the collection opened
    removed: list[Finding] = field(default_factory=list)  # by check --repair
    checked: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def ok(self) -> bool:
        return not self.damaged

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}

    def summary(self) -> dict[str, Any]:
        """What a server may tell its clients: findings by relative file, no paths of its own."""
        return {
            "ok": self.ok,
            "generation": self.generation,
            "files": self.files,
            "verified": self.verified,
            "unrecorded": len(self.unrecorded),
            "damaged": [damage.to_dict() for damage in self.damaged],
            "leftovers": len(self.leftovers),
            "checked": self.checked,
        }

    def lines(self) -> list[str]:
        """The report for people, one finding a line."""
        lines = [f"collection {self.directory} (generation {self.generation})"]
        checked = f"{self.files} files, {self.bytes_read / 1e6:.1f} MB read"
        if self.verified:
            checked += f", {self.verified} checksums ({self.algorithm}) compared"
        lines.append(f"files      {checked}")
        if self.unrecorded:
            lines.append(
                f"unchecked  no checksums recorded for {len(self.unrecorded)} files (written by "
                "an older densekit; a rebuild or a compaction records them)"
            )
        lines.extend(f"DAMAGED    {damage.path}: {damage.reason}" for damage in self.damaged)
        lines.extend(f"removed    {left.path}: {left.reason}" for left in self.removed)
        lines.extend(f"leftover   {left.path}: {left.reason}" for left in self.leftovers)
        if self.write_in_progress:
            lines.append("leftovers  not listed: a write is in progress")
        lines.append(("result     damaged: " if self.damaged else "result     ok") + self.advice)
        return lines


def verify_collection(directory: str | Path, *, open_check: bool = False) -> IntegrityReport:
    """Read every file of the collection at ``directory`` and compare it with what its commit
    recorded; with ``open_check``, also open the collection (counts and indexes agree).

    Safe beside writers and readers: it only reads, and a damage report that a concurrent
    commit explains (its files replaced while being read) is taken again on the new manifest.
    An unreadable or refused manifest raises CollectionError.
    """
    directory = Path(directory)
    for attempt in range(_ATTEMPTS):
        manifest = read_manifest(directory)
        report = _verify(directory, manifest, open_check)
        if report.ok or attempt + 1 == _ATTEMPTS or read_manifest(directory) == manifest:
            return remember_report(directory, report, manifest.generation)
    raise AssertionError("unreachable")  # the loop returns on its last attempt


def remember_report(directory: Path, report: IntegrityReport, version: str) -> IntegrityReport:
    """Keep ``report`` as the last verification of ``version`` (the generation, or a sharded
    collection's generations of every shard) of the collection at ``directory``."""
    with _LATEST_LOCK:
        _LATEST[str(directory.resolve())] = (version, report)
    return report


def latest_report(directory: Path, version: str) -> IntegrityReport | None:
    """The last verification of ``version`` of the collection at ``directory`` in this
    process (a server's background check), or None."""
    with _LATEST_LOCK:
        checked, report = _LATEST.get(str(directory.resolve()), (None, None))
    return report if checked == version else None


def repair_collection(directory: str | Path) -> list[Finding]:
    """Remove the leftovers of the collection at ``directory`` (what its manifest no longer
    names) and return them; refused while another write holds the collection. Damaged files
    are not repaired: only a backup or a rebuild has their bytes."""
    directory = Path(directory)
    read_manifest(directory)  # a missing or broken collection is reported before locking
    with directory_lock(directory):
        return clear_leftovers(directory, read_manifest(directory))


def verify_pinned(directory: Path, manifest: Manifest) -> IntegrityReport:
    """:func:`verify_collection` of the collection at ``directory`` as ``manifest`` (a sharded
    collection's pinned manifest of one shard) names it, without opening it."""
    return _verify(directory, manifest, open_check=False)


def _verify(directory: Path, manifest: Manifest, open_check: bool) -> IntegrityReport:
    started = time.perf_counter()
    damaged: list[Finding] = []
    own = f"{manifest.generation}/{CHECKSUMS_FILE}"
    sizes = dict(manifest.files)
    adapter = manifest.adapter
    if adapter is not None:
        sizes.update({f"{adapter.folder}/{name}": size for name, size in adapter.files.items()})
    own_records = {name for name in sizes if name.endswith(f"/{CHECKSUMS_FILE}")}
    recorded: dict[str, str] = {}
    records_read: set[str] = set()
    if own in sizes:
        records_read.add(own)
        recorded.update(_recorded(directory, own, sizes[own], damaged))
    if adapter is not None and CHECKSUMS_FILE in adapter.files:
        record = f"{adapter.folder}/{CHECKSUMS_FILE}"
        records_read.add(record)
        inner = _recorded(directory, record, sizes[record], damaged)
        recorded.update({f"{adapter.folder}/{name}": value for name, value in inner.items()})
    # Files a damaged record leaves unchecked were not "written before checksums".
    records_damaged = bool(damaged)
    unrecorded: list[str] = []
    read = verified = 0
    for name, size in sorted(sizes.items()):
        if name in records_read:
            continue  # checked, and any damage reported, by _recorded
        problem = _file_problem(directory, name, size)
        if problem is None and name in recorded:
            read += size
            verified += 1
            if file_checksum(directory / name) != recorded[name]:
                problem = "its bytes changed since it was written (the checksum differs)"
        elif problem is None and name not in own_records and not records_damaged:
            unrecorded.append(name)
        if problem is not None:
            damaged.append(Finding(name, problem))
    opened = None
    if open_check and not damaged:
        opened = _opens(directory, damaged)
    busy = _write_in_progress(directory)
    leftovers = [] if busy else find_leftovers(directory, manifest)
    return IntegrityReport(
        directory=str(directory.resolve()),
        generation=manifest.generation,
        files=len(sizes) - len(own_records),  # the records themselves are not counted
        bytes_read=read,
        verified=verified,
        unrecorded=unrecorded,
        damaged=damaged,
        leftovers=leftovers,
        advice=_advice(directory, manifest, damaged, leftovers),
        seconds=round(time.perf_counter() - started, 3),
        write_in_progress=busy,
        opened=opened,
    )


def _recorded(directory: Path, name: str, size: int, damaged: list[Finding]) -> dict[str, str]:
    """The checksums a commit recorded in ``name``; a record that is missing, not the size the
    manifest says, or unreadable is reported as damage (read only when its size agrees)."""
    problem = _file_problem(directory, name, size)
    if problem is None:
        try:
            return read_checksums(directory / name)
        except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
            problem = f"the record of checksums is unreadable ({exc})"
    damaged.append(Finding(name, problem))
    return {}


def _file_problem(directory: Path, name: str, size: int) -> str | None:
    try:
        path = check_inside(directory, name, "files")
    except CollectionError:
        return "a symbolic link that leads outside the collection"
    if not path.is_file():
        return "missing"
    actual = path.stat().st_size
    if actual != size:
        return f"{actual} bytes, the manifest says {size}"
    return None


def _opens(directory: Path, damaged: list[Finding]) -> bool:
    from densekit.store.collection import StoredCollection

    try:
        StoredCollection(directory).close()
    except (CollectionError, OSError) as exc:
        damaged.append(Finding(MANIFEST_NAME, f"the collection does not open: {exc}"))
        return False
    return True


def _write_in_progress(directory: Path) -> bool:
    """Whether a writer holds the collection's lock (its staged generation is no leftover)."""
    try:
        with (directory / LOCK_FILE).open("rb") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock, fcntl.LOCK_UN)
    except OSError:
        return False  # never written to, or not ours to lock
    return False


def _advice(
    directory: Path, manifest: Manifest, damaged: list[Finding], leftovers: list[Finding]
) -> str:
    if damaged:
        return (
            f"restore {directory} from a backup, or rebuild it: densekit index "
            f"{manifest.source} --out {directory} --overwrite"
        )
    if leftovers:
        return (
            f" ({len(leftovers)} leftovers: densekit check --repair removes them, and so does "
            "the next write)"
        )
    return ""
