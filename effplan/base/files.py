"""Outputs are whole or absent, and never an input: every file effplan writes goes through atomic_file
(write_atomic for text), which refuses to replace a file this command read (see `reads`)."""
from __future__ import annotations

import glob
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import EffplanError


_READ: set[tuple[int, int]] | None = None  # (device, inode) of each file the running CLI command read


def reads(path) -> None:
    """Note that the running command reads `path`: no output of it may replace that file. Outside a
    command (effplan used as a library) nothing is noted: a program may read a file and then replace it."""
    if _READ is None:
        return
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return
    _READ.add((st.st_dev, st.st_ino))


def watch_reads(on: bool) -> None:
    """A CLI command begins (on) or ends (off)."""
    global _READ
    _READ = set() if on else None


def refuse_input(output: str, inputs: dict[str, object]) -> None:
    """Refuse, before any work, an output that resolves to one of the files a command is given
    (`inputs`: what names each value, e.g. "--baseline" -> path), links and relative paths followed."""
    try:
        target = os.stat(output)
    except (OSError, ValueError):
        return  # no file there yet: nothing to replace
    for what, values in inputs.items():
        for value in values if isinstance(values, (list, tuple)) else (values,):
            try:
                same = isinstance(value, str) and os.path.isfile(value) and os.path.samestat(os.stat(value), target)
            except (OSError, ValueError):
                same = False
            if same:
                raise EffplanError(f"-o {output} is the file given as {what}: an output never replaces an input; "
                                   f"write it to another file")


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
        if _READ and target.exists() and (target.stat().st_dev, target.stat().st_ino) in _READ:
            raise EffplanError(f"cannot write {path}: it is a file this command reads; write the output to "
                               f"another file")
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
