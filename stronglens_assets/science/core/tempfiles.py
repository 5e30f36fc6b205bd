"""Temporary files of atomic writes: one naming scheme, and a sweep that removes only stale ones.

An atomic local write goes to a hidden temporary file next to its target and is renamed over
it (``os.replace``). A writer killed in between (SIGKILL, OOM, power) leaves the temporary file
behind; at survey scale such leftovers are gigabytes (``cache/training_images``). Names carry
the writer's process id and host, so a later start can tell a crashed writer's file from a
live writer's:

``.<target name>.<pid>@<host>.<token>.tmp``

:func:`sweep_stale_temp_files` removes a temporary file only when its writer is provably gone:
written on this host by a process that no longer exists. A file of another host (a shared
filesystem) or without a recorded writer (older names: ``.<target>.<random>.tmp``) is removed
only once it is older than ``max_age_s``. A live writer's file is never touched.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import socket
import time
from pathlib import Path

__all__ = [
    "DEFAULT_MAX_AGE_S",
    "describe_os_error",
    "is_stale_temp_file",
    "sweep_stale_temp_files",
    "temp_path_for",
    "this_host",
]

#: Age [s] after which a temporary file whose writer cannot be checked counts as stale.
DEFAULT_MAX_AGE_S: float = 6 * 3600.0

_SUFFIXES = (".tmp", ".part")
# .<target>.<pid>@<host>.<token>.tmp (this module) or .<target>.<pid>.tmp (older cache writer)
_WITH_WRITER = re.compile(r"^\..+\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+)\.[A-Za-z0-9_-]+\.tmp$")
_WITH_PID = re.compile(r"^\..+\.(?P<pid>\d+)\.tmp$")


_HINTS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file exceeds the allowed file size",
    errno.EROFS: "the filesystem is read-only",
    errno.EACCES: "permission denied",
}


def describe_os_error(exc: OSError) -> str:
    """``exc`` in words for a message that names the path itself: ``"[Errno 28] No space
    left on device (the disk is full)"``."""
    text = f"[Errno {exc.errno}] {exc.strerror}" if exc.errno else str(exc)
    hint = _HINTS.get(exc.errno or 0)
    return f"{text} ({hint})" if hint else text


def this_host() -> str:
    """This machine's host name reduced to ``[A-Za-z0-9-]`` (as written into temp names)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def temp_path_for(target: str | os.PathLike[str]) -> Path:
    """A fresh hidden temporary path next to ``target``, naming this process and host."""
    target = Path(target)
    token = secrets.token_hex(4)
    return target.with_name(f".{target.name}.{os.getpid()}@{this_host()}.{token}.tmp")


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OverflowError:  # not a valid pid at all
        return False
    return True


def is_stale_temp_file(
    path: str | os.PathLike[str], *, max_age_s: float = DEFAULT_MAX_AGE_S, now: float | None = None
) -> bool:
    """Whether ``path`` is a temporary file of a writer that is gone (see the module doc).

    Names that are not hidden ``.tmp`` / ``.part`` files are never stale.
    """
    path = Path(path)
    name = path.name
    if not name.startswith(".") or not name.endswith(_SUFFIXES):
        return False
    match = _WITH_WRITER.match(name)
    if match and match["host"] == this_host():
        return not _process_exists(int(match["pid"]))
    if not match and (legacy := _WITH_PID.match(name)):
        return not _process_exists(int(legacy["pid"]))
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    return age > max_age_s


def sweep_stale_temp_files(
    directory: str | os.PathLike[str],
    *,
    recursive: bool = False,
    max_age_s: float = DEFAULT_MAX_AGE_S,
) -> list[Path]:
    """Remove the stale temporary files in ``directory`` (and below it if ``recursive``).

    Returns the removed paths. A missing directory has none. Files that vanish meanwhile
    (another sweep) are skipped.
    """
    base = Path(directory)
    if not base.is_dir():
        return []
    candidates = base.rglob(".*") if recursive else base.glob(".*")
    removed = []
    now = time.time()
    for path in sorted(candidates):
        if path.is_file() and is_stale_temp_file(path, max_age_s=max_age_s, now=now):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
