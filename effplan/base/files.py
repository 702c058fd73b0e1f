"""Outputs are whole or absent: every file effplan writes goes through write_atomic."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import EffplanError


def write_atomic(path: str, text: str | bytes) -> None:
    """Write a whole file or nothing: a temporary file in the same folder, then a rename. A link is
    followed (its target is replaced, the link kept); a device or pipe (/dev/stdout) is written into."""
    mode = "wb" if isinstance(text, bytes) else "w"
    tmp = None
    try:
        if os.path.exists(path) and not os.path.isfile(path):  # both follow links
            with open(path, mode) as fh:
                fh.write(text)
            return
        target = Path(os.path.realpath(path))
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, mode) as fh:
            fh.write(text)
        if target.exists():  # keep the mode of the file replaced
            mode = target.stat().st_mode & 0o7777
        else:  # mkstemp makes 0600; a plain open() would honour the umask
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise EffplanError(f"cannot write {path}: {exc.strerror or exc}") from None
