"""Files that are complete or absent: every write goes through a temporary file and a rename."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from typing import Any, BinaryIO

_NEW_FILE_MODE = 0o666  # what open() and every shell tool ask for; the umask takes bits away


def _create_temporary(folder: str, basename: str) -> tuple[int, str]:
    """Create a new, uniquely named file next to the target; returns ``(fd, path)``.

    Unlike ``tempfile.mkstemp`` (always 0600), the file is created with mode 0666 so that the
    kernel applies the process's umask (and a folder's default ACL) exactly as for a plain
    ``open(path, "w")``.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{basename}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, _NEW_FILE_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name for {basename!r} in {folder}")


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> None:
    """Write a file through ``write(f)`` so that ``path`` is either complete or untouched.

    The data goes to a uniquely named temporary file in the same folder, is flushed and fsynced,
    then ``os.replace``d over ``path``; on any error the temporary file is removed.

    Permissions: a new file gets the usual mode, 0666 minus the umask (0644 under the common
    umask 022), like any file a program opens for writing. Replacing an existing file keeps that
    file's permission bits, as editing it in place would, so a results file that a user made
    group-readable (or private) stays so when a rerun rewrites it.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = _create_temporary(folder, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            with contextlib.suppress(FileNotFoundError):  # a new file keeps its creation mode
                os.fchmod(f.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
