"""Outputs are whole or absent: every file effplan writes goes through atomic_file (write_atomic for text)."""
from __future__ import annotations

import glob
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import EffplanError


def write_atomic(path: str, text: str | bytes) -> None:
    """Write a whole file or nothing (see atomic_file)."""
    with atomic_file(path, "wb" if isinstance(text, bytes) else "w") as fh:
        fh.write(text)


@contextmanager
def atomic_file(path: str, mode: str = "wb"):
    """A file to write `path` through, whole or not at all: a temporary file in the target's folder,
    renamed over it when the block ends without error, removed when it fails. A link is followed (its
    target is replaced, the link kept); a device or pipe (/dev/stdout, /dev/null) is written into, never
    replaced. Temporary files carry the writer's pid, so one a killed run left is removed by the next."""
    tmp = None
    try:
        if os.path.exists(path) and not os.path.isfile(path):  # both follow links
            with open(path, mode) as fh:
                yield fh
            return
        target = Path(os.path.realpath(path))
        _remove_stale(target)
        if target.exists():  # keep the mode of the file replaced
            perms = target.stat().st_mode & 0o7777
        else:  # mkstemp makes 0600; a plain open() would honour the umask
            umask = os.umask(0)
            os.umask(umask)
            perms = 0o666 & ~umask
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.{os.getpid()}.")
        with os.fdopen(fd, mode) as fh:
            yield fh
        os.chmod(tmp, perms)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise EffplanError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _remove_stale(target: Path) -> None:
    """Remove the temporary files of `target` whose writer is gone (killed before its rename)."""
    try:
        leftovers = list(target.parent.glob(f".{glob.escape(target.name)}.*.*"))
    except OSError:
        return
    for tmp in leftovers:
        pid = tmp.name[len(target.name) + 2:].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            try:
                tmp.unlink()
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process
        return True
    return True
