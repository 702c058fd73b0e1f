"""Errors a user can cause. The CLI prints them as one line and exits with `exit_code`."""
import difflib


MAX_QUOTED = 80  # characters of raw user text an error repeats


def quote(value, limit: int = MAX_QUOTED) -> str:
    """Raw user text (a TOML key, a name, an ONNX op type) for an error message: quoted with its
    newlines and control characters escaped, so the error stays one line, and cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def one_line(message: str, limit: int = 2000) -> str:
    """An error message as one printable line: the last guard for text no caller quoted."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class EffplanError(Exception):
    """Bad input or usage: a spec, a model name, an option value, a file."""

    exit_code = 2


def did_you_mean(word: str, choices, n: int = 3) -> str:
    """' (did you mean: a, b?)' for the nearest choices (as spelled in `choices`), or '' when none is close."""
    if not isinstance(word, str) or len(word) > 200:  # no name is that long; difflib would take long
        return ""
    choices = [c for c in choices if c]
    spelled = {}
    for c in choices:
        spelled.setdefault(c.lower(), c)
    starts = [c for c in choices if word and c.lower().startswith(word.lower())]
    near = [spelled[c] for c in difflib.get_close_matches(word.lower(), list(spelled), n=n, cutoff=0.5)]
    close = [c for c in dict.fromkeys(starts + near) if c != word][:n]
    if not close:
        # A short prefix ('efficientnet-b') is still worth a hint.
        close = [c for c in choices if c.lower().startswith(word.lower()[:6]) and c != word][:n]
    return f" (did you mean: {', '.join(close)}?)" if close else ""
