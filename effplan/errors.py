"""Errors a user can cause. The CLI prints them as one line and exits with `exit_code`."""
import difflib


class EffplanError(Exception):
    """Bad input or usage: a spec, a model name, an option value, a file."""

    exit_code = 2


def did_you_mean(word: str, choices, n: int = 3) -> str:
    """' (did you mean: a, b?)' for the nearest choices, or '' when none is close."""
    starts = [c for c in choices if word and c.lower().startswith(word.lower())]
    close = list(dict.fromkeys(starts + difflib.get_close_matches(word.lower(), [c.lower() for c in choices],
                                                                  n=n, cutoff=0.5)))[:n]
    if not close:
        # A short prefix ('efficientnet-b') is still worth a hint.
        close = [c for c in choices if c.lower().startswith(word.lower()[:6])][:n]
    return f" (did you mean: {', '.join(close)}?)" if close else ""
