"""Files written whole or not at all: a temporary file beside the target, renamed over it when complete.
Run folders, the mnist5k cache and the precision cache all write through ``atomic_write``."""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file under this process's umask (``0o644`` under ``022``)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, then put it back
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, write, exclusive: bool = False, mode: int | None = None) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it over ``path``.

    ``exclusive``: link the finished file to ``path`` instead, which fails with ``FileExistsError``
    when ``path`` exists: creating the file and checking it was absent are one step.
    A write that fails (a full disk: ``torch.save`` reports it as a ``RuntimeError``) raises ``OSError``
    with a one-line reason and the file's name; ``path`` is then as it was. The file gets ``mode``, or
    by default what the umask gives new files (``new_file_mode``).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, new_file_mode() if mode is None else mode)  # not mkstemp's 0600, which hides it from others
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(tmp, path)
            Path(tmp).unlink()
        else:
            os.replace(tmp, path)
    except RuntimeError as error:  # torch.save's writer: "file write failed", the OSError lost on the way
        Path(tmp).unlink(missing_ok=True)
        raise OSError(errno.EIO, _write_failure(path.parent, error), str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_failure(folder: Path, error: Exception) -> str:
    """Why a write into ``folder`` failed, in a few words."""
    try:
        if shutil.disk_usage(folder).free < 1 << 20:
            return "no space left on the device"
    except OSError:
        pass
    return f"writing failed ({str(error).strip().splitlines()[0][:120]})"
