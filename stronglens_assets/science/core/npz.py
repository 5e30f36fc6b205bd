"""``.npz`` archives: the one deterministic writer and the one reader (never a pickle).

Writer: deflate-compressed members with a fixed timestamp, so the same arrays always give the
same bytes. Reader: ``numpy.load(..., allow_pickle=False)``, so an archive holding object
arrays (pickles) is refused instead of executed.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterable, Mapping

import numpy as np

from stronglens_assets.errors import StronglensError

__all__ = ["NpzDecodeError", "NpzError", "decode_npz", "encode_npz"]

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class NpzError(StronglensError, TypeError):
    """Arrays that cannot be written to an ``.npz`` without pickling (object dtype)."""


class NpzDecodeError(StronglensError, ValueError):
    """Bytes that are no readable ``.npz`` archive (truncated, corrupt, a bare ``.npy``,
    pickles); the message names the source."""


def encode_npz(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Arrays as ``.npz`` bytes: deflate members, fixed timestamps, no pickles."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in arrays:
            array = np.asarray(arrays[name])
            if array.dtype.hasobject:
                raise NpzError(f"array {name!r} has dtype object; npz stores no pickles")
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(info, member.getvalue(), compresslevel=6)
    return buffer.getvalue()


def decode_npz(
    data: bytes, members: Iterable[str] | None = None, *, source: str = "npz data"
) -> dict[str, np.ndarray]:
    """Arrays of ``.npz`` bytes (``allow_pickle=False``): every member, or only ``members``
    (those the archive holds; the caller checks for missing ones and names its source).

    Raises :class:`NpzDecodeError` (a ``ValueError``) naming ``source`` for bytes that are no
    archive (truncated or corrupt: ``BadZipFile``, bad CRC, short member), a bare ``.npy``
    array, or an archive holding pickles. Members are read here, so a corrupt member fails
    now, not at first use.
    """
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if not hasattr(loaded, "files"):  # a bare .npy array
            raise ValueError("a single array (.npy), not an .npz archive")
        with loaded as archive:
            names = archive.files if members is None else [m for m in members if m in archive.files]
            return {name: archive[name] for name in names}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise NpzDecodeError(
            f"{source} is not a readable .npz archive ({len(data)} bytes): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
