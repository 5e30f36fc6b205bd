"""Result sets: a D06 partition's files, replaced all at once.

Layout under the storage root, for a result folder ``<root>/<name>`` (e.g.
``results/D06/grid_no_poisson``)::

    <root>/<name>/<version>/<file>   the files (selection_function.csv, ...)
    <root>/<name>.json               the pointer: version, each file's key, size and sha256

``<version>`` is a content hash of the files (timing fields aside, the same inputs give the
same version). The pointer is written last (one atomic write locally, one PUT on S3), then the
files of older versions are deleted: a reader that follows the pointer never sees a
half-written set, and a crash before the pointer leaves the previous set readable (its files
untouched; the orphan version is removed by the next successful write).

:class:`ResultSetSource` reads ``<name>/<file>`` through the pointers, so the published-layout
reader (:func:`~stronglens_assets.science.reporting.d06_results.read_d06_results`) loads our
results as it loads the published directory. :func:`verify_result_set` checks a set from its
pointer (existence and size by HEAD where the store has it; no download).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stronglens_assets.resources.object_store import ObjectNotFoundError, ObjectStore
from stronglens_assets.resources.shards import publish_version
from stronglens_assets.science.core.hashing import sha256_bytes

__all__ = [
    "ResultSet",
    "ResultSetSource",
    "read_result_set",
    "result_pointer_key",
    "verify_result_set",
    "write_result_set",
]

POINTER_FORMAT = 1


@dataclass(frozen=True)
class ResultSet:
    """The pointer of one result folder: ``files`` maps file name -> (key, size, sha256)."""

    root: str
    name: str
    version: str
    files: Mapping[str, tuple[str, int, str]]

    def key(self, file: str) -> str:
        if file not in self.files:
            raise FileNotFoundError(f"result set {self.root}/{self.name} has no file {file!r}")
        return self.files[file][0]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": POINTER_FORMAT,
            "root": self.root,
            "name": self.name,
            "version": self.version,
            "files": {
                f: {"key": k, "bytes": b, "sha256": s}
                for f, (k, b, s) in sorted(self.files.items())
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResultSet:
        files = {f: (v["key"], int(v["bytes"]), v["sha256"]) for f, v in data["files"].items()}
        return cls(data["root"], data["name"], data["version"], files)


def result_pointer_key(root: str, name: str) -> str:
    return f"{root}/{name}.json"


def write_result_set(
    store: ObjectStore, root: str, name: str, files: Mapping[str, bytes]
) -> ResultSet:
    """Write ``files`` (file name -> bytes) as the new set of ``<root>/<name>``; pointer last,
    then the older versions' files are deleted."""
    if not files:
        raise ValueError(f"result set {root}/{name}: no files to write")
    for file in files:
        if "/" in file or not file or file.startswith("."):
            raise ValueError(f"result set {root}/{name}: invalid file name {file!r}")
    digest = hashlib.sha256()
    for file in sorted(files):
        digest.update(file.encode() + b"\0" + hashlib.sha256(files[file]).digest())
    version = digest.hexdigest()[:16]
    base = f"{root}/{name}/{version}"
    records = {}
    for file, data in sorted(files.items()):
        key = f"{base}/{file}"
        store.write_bytes(key, data)
        records[file] = (key, len(data), sha256_bytes(data))
    result = ResultSet(root, name, version, records)
    publish_version(store, result_pointer_key(root, name), result.to_json(), base)
    return result


def read_result_set(store: ObjectStore, root: str, name: str) -> ResultSet:
    """The current pointer (:class:`ObjectNotFoundError` if the set was never written)."""
    return ResultSet.from_json(json.loads(store.read_bytes(result_pointer_key(root, name))))


def verify_result_set(store: ObjectStore, result: ResultSet) -> list[str]:
    """Problems of a written set from its pointer, without downloading it: a file missing or
    of another size (by HEAD where the store has ``head``, else its local size)."""
    problems = []
    for file, (key, size, _) in sorted(result.files.items()):
        head = getattr(store, "head", None)
        if head is not None:
            info = head(key)
            found = None if info is None else int(info["size"])
        else:
            path = store.local_path(key)
            found = path.stat().st_size if path is not None and path.exists() else None
        if found is None:
            problems.append(f"{file}: {store.uri(key)} is missing")
        elif found != size:
            problems.append(f"{file}: {store.uri(key)} has {found} bytes, pointer says {size}")
    return problems


class ResultSetSource:
    """``<name>/<file>`` of the result sets under ``root``, read through their pointers
    (a :class:`~stronglens_assets.science.reporting.d06_results.ResultsSource`)."""

    def __init__(self, store: ObjectStore, root: str):
        self.store = store
        self.root = root.strip("/")
        self._sets: dict[str, ResultSet | None] = {}

    @property
    def location(self) -> str:
        return self.store.uri(self.root)

    def _set(self, name: str) -> ResultSet | None:
        if name not in self._sets:
            try:
                self._sets[name] = read_result_set(self.store, self.root, name)
            except (ObjectNotFoundError, KeyError, TypeError, ValueError):
                self._sets[name] = None  # absent, or another JSON file (not a pointer)
        return self._sets[name]

    def _key(self, key: str) -> str:
        name, _, file = key.partition("/")
        result = self._set(name) if file else None
        if result is None or file not in result.files:
            raise FileNotFoundError(f"no result {self.root}/{key}")
        return result.files[file][0]

    def read_bytes(self, key: str) -> bytes:
        return self.store.read_bytes(self._key(key))

    def uri(self, key: str) -> str:
        try:
            return self.store.uri(self._key(key))
        except FileNotFoundError:
            return self.store.uri(f"{self.root}/{key}")

    def list_keys(self, prefix: str = "") -> list[str]:
        keys = []
        for key in self.store.list_keys(self.root):
            rest = key[len(self.root) + 1 :]
            if "/" in rest or not rest.endswith(".json"):
                continue
            name = rest[: -len(".json")]
            result = self._set(name)
            if result is not None:
                keys += [f"{name}/{file}" for file in result.files]
        return sorted(k for k in keys if k.startswith(prefix))
