"""The one validator of TOML data. Each file kind (model specs, devices, runtimes, budgets) declares
its keys once, as a table of key -> type (with its unit, bounds, choices and default); one engine
checks a parsed file against that declaration and refuses the first fault in one line that names the
file, the key's path and what was expected:

    t4 (built-in): efficiency.matrix: expected a share of peak, more than 0 and at most 1, got 1.5
    budgets.toml: budget[2]: unknown key 'max_mac' (did you mean: max_macs?)

Rules that tie keys together (a figure needs its source, max_latency needs a device) stay with their
kind, after the declared check. Integers past 2^63 and non-finite numbers are refused everywhere:
every figure effplan derives from a file must stay a finite int64 or float.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import EffplanError, did_you_mean, quote
from .files import reads

REQUIRED = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()  # the default of a key a file must give
EMPTY = type("Empty", (), {"__repr__": lambda self: "EMPTY"})()  # a table a file may leave out: its keys' defaults
MAX_INT = 1 << 63
MAX_ROWS = 1000  # rows of an array of tables: real files have a few dozen
MAX_FILE_BYTES = 1 << 20


class DataError(EffplanError):
    """A TOML data file that breaks its declaration."""


@dataclass(frozen=True)
class Where:
    """A place in a file: the file as messages name it, and the key path inside ('stages[2].kernel')."""

    file: str
    path: str = ""

    def __truediv__(self, key) -> Where:
        if isinstance(key, int):
            return Where(self.file, f"{self.path}[{key}]")
        return Where(self.file, f"{self.path}.{key}" if self.path else str(key))

    def __str__(self) -> str:
        return f"{self.file}: {self.path}" if self.path else self.file


def shown_value(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= MAX_INT:
        return f"an integer of {value.bit_length()} bits"  # repr would be thousands of digits (or refused)
    return quote(value)


class Type:
    """A declared value: `check(value, where)` returns it converted (to its unit) or raises DataError."""

    default = REQUIRED
    expect = ""

    @property
    def wanted(self) -> str:
        """What a missing key should have held."""
        if self.expect:
            return self.expect
        if isinstance(self, Number):
            return "an integer" if self.whole else "a number"
        if isinstance(self, Text) and self.choices:
            return f"one of {', '.join(self.choices)}"
        return {Text: "a string", Flag: "true or false", Names: "a list of strings"}.get(type(self), "a value")

    def fail(self, where: Where, value, expect: str | None = None):
        raise DataError(f"{where}: expected {self.expect or expect}, got {shown_value(value)}")

    def check(self, value, where: Where):
        raise NotImplementedError


@dataclass(frozen=True)
class Number(Type):
    """An integer (`whole`) or a number, within [lo, hi] (lo excluded when `positive`), times `scale`
    (the file's unit to effplan's: GB to bytes), then passed through `to` (int for byte counts)."""

    whole: bool = False
    lo: float | None = None
    hi: float | None = None
    positive: bool = False
    choices: tuple = ()
    scale: float = 1
    to: Callable | None = None
    expect: str = ""
    default: object = REQUIRED

    def check(self, value, where):
        if isinstance(value, bool) or not isinstance(value, int if self.whole else (int, float)):
            self.fail(where, value, "an integer" if self.whole else "a number")
        if isinstance(value, int) and abs(value) >= MAX_INT:
            self.fail(where, value, "an integer of at most 63 bits" if self.whole else "a number below 2^63")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(where, value, "a finite number")
        if self.choices and value not in self.choices:
            self.fail(where, value, f"one of {', '.join(map(str, self.choices))}")
        low = self.lo is not None and (value <= self.lo if self.positive else value < self.lo)
        if low or self.hi is not None and value > self.hi:
            bound = (f"between {self.lo} and {self.hi}" if self.hi is not None else f">= {self.lo}") \
                if not self.positive else f"more than {self.lo}" + (f" and at most {self.hi}" if self.hi is not None else "")
            self.fail(where, value, f"a value {bound}")
        value = value if self.whole and self.scale == 1 else float(value) * self.scale
        return self.to(value) if self.to else value


@dataclass(frozen=True)
class Text(Type):
    """A string; with `choices`, one of them (`aliases`: other names, read in any case)."""

    choices: tuple = ()
    aliases: dict | None = None
    nonempty: bool = False
    expect: str = ""
    default: object = REQUIRED

    def check(self, value, where):
        if not isinstance(value, str) or self.nonempty and not value.strip():
            self.fail(where, value, "a non-empty string" if self.nonempty else "a string")
        if self.aliases is not None:
            value = self.aliases.get(value.lower(), value)
        if self.choices and value not in self.choices:
            raise DataError(f"{where}: expected one of {', '.join(self.choices)}, got {quote(value)}"
                            f"{did_you_mean(value, self.choices)}")
        return value


@dataclass(frozen=True)
class Flag(Type):
    default: object = REQUIRED

    def check(self, value, where):
        if not isinstance(value, bool):
            self.fail(where, value, "true or false")
        return value


@dataclass(frozen=True)
class Names(Type):
    """A list of strings, each one of `known` (a collection, or a function giving one) when given."""

    known: object = None
    default: object = ()

    def check(self, value, where):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(where, value, "a list of strings")
        known = self.known() if callable(self.known) else self.known
        for v in value:
            if known is not None and v not in known:
                raise DataError(f"{where}: unknown {quote(v)}{did_you_mean(v, known)}")
        return tuple(value)


@dataclass(frozen=True)
class Free(Type):
    """Anything: documentation a file may carry that nothing reads."""

    default: object = None

    def check(self, value, where):
        return value


@dataclass(frozen=True)
class Custom(Type):
    """A value its kind checks itself: `fn(value, where)` (a unit parser, a row with its own rules)."""

    fn: Callable = None
    expect: str = "a value"
    default: object = REQUIRED

    def check(self, value, where):
        return self.fn(value, where)


@dataclass(frozen=True)
class Either(Type):
    """The first of `options` that takes the value; `expect` says what they take together."""

    options: tuple = ()
    expect: str = ""
    default: object = REQUIRED

    def check(self, value, where):
        for option in self.options:
            try:
                return option.check(value, where)
            except DataError:
                pass
        self.fail(where, value)


@dataclass(frozen=True)
class Table(Type):
    """A table of declared keys, each a Type; an unknown key is refused with the nearest known ones, a
    `moved` key (once a setting, now documentation) with where it belongs. `build(**values)` makes
    the result (a dict of every key, defaults filled in, without it)."""

    keys: dict = field(default_factory=dict)
    build: Callable | None = None
    moved: dict = field(default_factory=dict)
    expect: str = "a table"
    default: object = REQUIRED

    def check(self, value, where):
        if not isinstance(value, dict):
            self.fail(where, value)
        for key in value:
            if key in self.moved:
                raise DataError(f"{where / key}: documentation only (nothing reads it): write it as {self.moved[key]}")
            if key not in self.keys:
                raise DataError(f"{where}: unknown key {quote(key)}{did_you_mean(key, self.keys)}")
        out = {}
        for key, kind in self.keys.items():
            if key in value:
                out[key] = kind.check(value[key], where / key)
            elif kind.default is EMPTY:
                out[key] = kind.check({}, where / key)
            elif kind.default is REQUIRED:
                raise DataError(f"{where}: missing key '{key}' ({kind.wanted})")
            else:
                out[key] = kind.default
        return self.build(**out) if self.build else out

    def extended(self, **keys) -> Table:
        """The same table with more keys (a kind's row plus a block kind's arguments)."""
        return dataclasses.replace(self, keys={**self.keys, **keys})


@dataclass(frozen=True)
class Rows(Type):
    """An array of tables ([[stages]]), at most `most` of them."""

    row: Type = None
    most: int = MAX_ROWS
    expect: str = "an array"
    default: object = REQUIRED

    def check(self, value, where):
        if not isinstance(value, list):
            self.fail(where, value)
        if len(value) > self.most:
            raise DataError(f"{where}: {len(value)} rows; at most {self.most}")
        return tuple(self.row.check(v, where / i) for i, v in enumerate(value))


@dataclass(frozen=True)
class Map(Type):
    """A table whose keys the file chooses (precisions, widths): each value a `value`; each key one of
    `known`, when given, named by `noun` in errors."""

    value: Type = None
    known: tuple | None = None
    noun: str = "key"
    nonempty: bool = False
    expect: str = "a table"
    default: object = REQUIRED

    def check(self, value, where):
        if not isinstance(value, dict) or self.nonempty and not value:
            self.fail(where, value)
        for key in value:
            if self.known is not None and key not in self.known:
                raise DataError(f"{where}: unknown {self.noun} {quote(key)}{did_you_mean(key, self.known)}; "
                                f"known: {', '.join(self.known)}")
        return {key: self.value.check(v, where / key) for key, v in value.items()}


def validate(kind: Type, data, where: Where | str, error: type = DataError):
    """`data` checked against `kind`; a fault is raised as `error` (the kind's own EffplanError)."""
    try:
        return kind.check(data, where if isinstance(where, Where) else Where(where))
    except DataError as exc:
        if error is DataError or isinstance(exc, error):
            raise
        raise error(str(exc)) from None


# ---- frozen dataclasses as declarations (specs and their block kinds) ----

def bounded(lo=None, hi=None, default=dataclasses.MISSING):
    """A dataclass field checked on load against [lo, hi], optionally with a default."""
    return field(default=default, metadata={"min": lo, "max": hi})


def choice(*options: str, default: str | None = None, aliases: dict | None = None):
    """A dataclass field holding one of `options` (read in any case; `aliases`: other names for them)."""
    return field(default=options[0] if default is None else default,
                 metadata={"choices": options, "aliases": {**{o: o for o in options}, **(aliases or {})}})


def declared(kind: Type):
    """A dataclass field whose value `kind` checks (rows with rules of their own)."""
    return field(default=kind.default, metadata={"schema": kind})


@functools.cache
def schema_of(cls) -> Table:
    """The Table a frozen dataclass declares: each field's annotation its type, `bounded`, `choice` or
    `declared` metadata its bounds, choices or own type, its default the key's default. Fields marked
    internal are not in files."""
    hints = typing.get_type_hints(cls)
    keys = {}
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        default = f.default if f.default is not dataclasses.MISSING else \
            EMPTY if f.default_factory is not dataclasses.MISSING else REQUIRED
        keys[f.name] = f.metadata.get("schema") or _field_type(hints[f.name], f.metadata, default)
    return Table(keys, build=cls)


def _field_type(tp, meta, default) -> Type:
    if typing.get_origin(tp) in (types.UnionType, typing.Union):  # X | None: absent keys take the default
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if dataclasses.is_dataclass(tp):
        return dataclasses.replace(schema_of(tp), default=EMPTY if default is REQUIRED else default)
    if typing.get_origin(tp) is tuple:
        return Rows(_field_type(typing.get_args(tp)[0], {}, REQUIRED), default=default)
    if tp is bool:
        return Flag(default=default)
    if tp in (int, float):
        return Number(whole=tp is int, lo=meta.get("min"), hi=meta.get("max"), default=default)
    if tp is str:
        return Text(choices=meta.get("choices", ()), aliases=meta.get("aliases"), default=default)
    raise TypeError(f"no TOML type for {tp}")


# ---- reading ----

def read_toml(path: Path, error: type = DataError) -> dict:
    """Parse a TOML file; any failure is a one-line `error` naming the file."""
    reads(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise error(f"{path}: larger than {MAX_FILE_BYTES} bytes; not a spec file")
        return tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file") from None
    except ValueError:  # Python refuses to read integers of more than 4,300 digits
        raise error(f"{path}: holds an integer of thousands of digits; no figure is that large") from None
    except RecursionError:
        raise error(f"{path}: nested too deeply to be a spec file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, expected a .toml spec file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None


def read_table_list(path: str | Path, key: str, hint: str, error: type = DataError) -> list[dict]:
    """The [[key]] tables of a TOML file ([] when there are none); any other top-level key is an error."""
    table = read_toml(Path(path), error)
    for name in table:
        if name != key:
            raise error(f"{path}: unknown key {quote(name)}{did_you_mean(name, [key])}; {hint}")
    entries = table.get(key, [])
    if not isinstance(entries, list):
        raise error(f"{path}: {key}: expected [[{key}]] tables, got {quote(entries)}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise error(f"{path}: {key}[{i}]: expected a table, got {quote(entry)}")
    return entries
