"""Versioned result sets: a set of files replaced all at once, safe under concurrent writers.

A result that is a *set* of files (a partition's cutout shards and index, a D06 variant's cell
files and summary, the paper's figures) is written as a new **version** behind one
**pointer**::

    <root>/<version>/<name>    the files of one version (never modified once published)
    <root>.json                the pointer: ``version`` and ``files`` (key, sha256, bytes of
                               each file) plus the caller's own fields

``<version>`` is 16 hex digits, by default a hash of the file names and contents: the same
inputs write the same bytes under the same keys (determinism), and Dagster's data version can
be the set's version.

Writing (:func:`publish`):

1. remember the version the pointer names now (the one this writer will replace) and when
   that pointer was written;
2. write every file of the new version;
3. switch the pointer (one atomic write locally, one PUT on S3): readers see the old set or
   the new one, never a mixture; a crash before this leaves the old set in place;
4. re-read the pointer. Only if it still names this writer's version does the writer delete
   the version **it** replaced, and of that version only files not rewritten since the
   replaced pointer was written (a concurrent writer re-creating those exact bytes keeps
   them). It then checks its own files and writes back any that are missing.

A writer that loses the race (another writer switched the pointer after it) deletes nothing:
its version stays as an *orphan*, as do versions of writers that crashed between steps 2 and
3. :func:`sweep_orphans` is the separate, safe step that removes them: files of versions the
pointer does not name and that are older than ``min_age_s`` (so an in-flight writer's files,
written minutes ago, are never swept).

Reading: :meth:`~.object_store.ObjectStore.read_bytes` checks every file of a versioned set
against the sha256 its pointer records; :func:`read_pointer` and :func:`read_file` are the
convenience readers.

Use::

    staged = stage(root="d06/grid_no_poisson", files={"cell0000.npz": data, ...})
    pointer = publish(store, staged, {"format": 1, "variant": "no_poisson"})
    pointer.files["cell0000.npz"].key   # d06/grid_no_poisson/<version>/cell0000.npz
    data = read_file(store, read_pointer(store, "d06/grid_no_poisson"), "cell0000.npz")
    sweep_orphans(store, "d06/grid_no_poisson")              # e.g. at the start of a run
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stronglens_assets.errors import StronglensError
from stronglens_assets.resources.object_store import (
    IntegrityError,
    ObjectNotFoundError,
    ObjectStore,
    validate_key,
)
from stronglens_assets.science.core.hashing import sha256_bytes

__all__ = [
    "DEFAULT_ORPHAN_AGE_S",
    "FileRecord",
    "Pointer",
    "PointerError",
    "StagedVersion",
    "content_version",
    "pointer_key",
    "publish",
    "read_file",
    "read_pointer",
    "stage",
    "sweep_orphans",
]

#: Files of unnamed versions younger than this [s] are left alone by :func:`sweep_orphans`.
DEFAULT_ORPHAN_AGE_S: float = 3600.0

_VERSION = re.compile(r"^[0-9a-f]{16}$")
_RESERVED = ("version", "files")


class PointerError(StronglensError, ValueError):
    """A pointer that cannot be read (not JSON, no version, malformed file list); names it."""


@dataclass(frozen=True)
class FileRecord:
    """One file of a version: storage key, sha256 (hex) and size in bytes."""

    key: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class StagedVersion:
    """A version ready to publish: its files' bytes and records (nothing written yet)."""

    root: str
    version: str
    data: Mapping[str, bytes]
    files: Mapping[str, FileRecord]


@dataclass(frozen=True)
class Pointer:
    """A published version: the pointer's ``version``, ``files`` and the caller's fields."""

    root: str
    version: str
    files: Mapping[str, FileRecord]
    fields: Mapping[str, Any] = field(default_factory=dict)


def pointer_key(root: str) -> str:
    """Storage key of the pointer of the set at ``root``."""
    return f"{validate_key(root)}.json"


def content_version(files: Mapping[str, bytes]) -> str:
    """16 hex digits of a hash over the (name, sha256) pairs, in name order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()[:16]


def stage(root: str, files: Mapping[str, bytes], version: str | None = None) -> StagedVersion:
    """Prepare ``files`` (name -> bytes; names are single key parts) as a version of ``root``.

    ``version`` defaults to :func:`content_version`; a caller with its own content hash (16
    lower-case hex digits) may pass it.
    """
    validate_key(root)
    version = content_version(files) if version is None else version
    if not _VERSION.match(version):
        raise ValueError(f"version {version!r} of {root!r}: expected 16 lower-case hex digits")
    records = {}
    for name, data in files.items():
        if "/" in name:
            raise ValueError(f"file name {name!r} of {root!r}: no '/' allowed")
        key = validate_key(f"{root}/{version}/{name}")
        records[name] = FileRecord(key, sha256_bytes(data), len(data))
    return StagedVersion(root, version, dict(files), records)


def _document(staged: StagedVersion, fields: Mapping[str, Any]) -> bytes:
    clash = sorted(set(fields) & set(_RESERVED))
    for name in clash:
        if name != "version" or fields[name] != staged.version:
            raise ValueError(f"pointer field {name!r} is reserved for the versioned writer")
    document = dict(fields)
    document["version"] = staged.version
    document["files"] = {
        name: {"key": r.key, "sha256": r.sha256, "bytes": r.bytes}
        for name, r in sorted(staged.files.items())
    }
    return json.dumps(document, sort_keys=True, indent=2).encode()


def _parse(store: ObjectStore, root: str, data: bytes) -> Pointer:
    where = store.uri(pointer_key(root))
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise PointerError(f"pointer {where} is not JSON: {exc}") from exc
    if not isinstance(document, dict) or not _VERSION.match(str(document.get("version", ""))):
        raise PointerError(f"pointer {where} names no version (field 'version')")
    try:
        files = {
            name: FileRecord(str(r["key"]), str(r["sha256"]), int(r["bytes"]))
            for name, r in (document.get("files") or {}).items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PointerError(f"pointer {where}: malformed field 'files' ({exc})") from exc
    fields = {k: v for k, v in document.items() if k not in _RESERVED}
    return Pointer(root, str(document["version"]), files, fields)


def read_pointer(store: ObjectStore, root: str) -> Pointer:
    """The published pointer of ``root`` (:class:`ObjectNotFoundError` if never written)."""
    return _parse(store, root, store.read_raw(pointer_key(root)))


def _current(store: ObjectStore, root: str) -> Pointer | None:
    try:
        return read_pointer(store, root)
    except (ObjectNotFoundError, PointerError):
        return None


def read_file(store: ObjectStore, pointer: Pointer, name: str) -> bytes:
    """Bytes of file ``name`` of ``pointer``'s version, checked against its recorded sha256."""
    if name not in pointer.files:
        raise KeyError(
            f"{store.uri(pointer_key(pointer.root))} lists no file {name!r} "
            f"(it lists {sorted(pointer.files)[:10]})"
        )
    record = pointer.files[name]
    data = store.read_raw(record.key)
    if sha256_bytes(data) != record.sha256:
        raise IntegrityError(
            f"{store.uri(record.key)} does not match the sha256 recorded in "
            f"{store.uri(pointer_key(pointer.root))}: truncated or changed after it was written"
        )
    return data


def publish(store: ObjectStore, staged: StagedVersion, fields: Mapping[str, Any]) -> Pointer:
    """Write ``staged`` and switch the pointer of its root to it (steps 1-4 of the module doc).

    ``fields``: the caller's pointer fields (JSON types; ``files`` is reserved, ``version``
    may only repeat the staged version). Returns the published pointer. Never deletes a file
    of a version another writer published, nor one rewritten while this writer ran.
    """
    root = staged.root
    document = _document(staged, fields)
    replaced_at = store.last_modified(pointer_key(root))
    replaced = _current(store, root)
    for name, record in staged.files.items():
        store.write_bytes(record.key, staged.data[name])
    store.write_bytes(pointer_key(root), document)
    now = _current(store, root)
    if now is None or now.version != staged.version:
        return _parse(store, root, document)  # another writer switched after us: keep all
    if replaced is not None and replaced_at is not None and replaced.version != staged.version:
        prefix = f"{root}/{replaced.version}"
        for key in store.list_keys(prefix):
            written = store.last_modified(key)
            if written is not None and written <= replaced_at:
                store.delete(key)
    for name, record in staged.files.items():  # a concurrent cleanup may have removed ours
        if not store.exists(record.key):
            store.write_bytes(record.key, staged.data[name])
    return now


def sweep_orphans(
    store: ObjectStore, root: str, *, min_age_s: float = DEFAULT_ORPHAN_AGE_S
) -> list[str]:
    """Delete files under ``root/`` that belong to no published version; return their keys.

    Removes files of versions other than the pointer's, and files the pointer does not list
    inside its own version directory, once older than ``min_age_s`` (a writer still writing
    its version is never swept). Does nothing if the pointer is missing or unreadable: then
    nothing is known to be an orphan.
    """
    current = _current(store, root)
    if current is None:
        return []
    listed = {record.key for record in current.files.values()}
    if not listed:  # a pointer of the older shard format: keep its version directory whole
        listed = None
    cutoff = time.time() - min_age_s
    removed = []
    for key in store.list_keys(root):
        parts = key[len(root) + 1 :].split("/")
        in_current = parts[0] == current.version
        if in_current and (listed is None or key in listed):
            continue
        written = store.last_modified(key)
        if written is not None and written < cutoff:
            store.delete(key)
            removed.append(key)
    return removed
