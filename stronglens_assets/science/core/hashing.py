"""SHA-256 checksums of bytes, files and JSON-able values (hex digests, lower case)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

#: Read size when hashing files (1 MiB).
FILE_CHUNK_BYTES: int = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], chunk_size: int = FILE_CHUNK_BYTES) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_json(value: Any) -> str:
    """Hex SHA-256 of ``json.dumps(value, sort_keys=True)`` (key order does not matter)."""
    return sha256_bytes(json.dumps(value, sort_keys=True).encode())
