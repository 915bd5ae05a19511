"""The input-validation engine: typed dataclass schemas with per-field range and provenance, TOML
files with ``extends``, dotted ``KEY=VALUE`` overrides, and one-line errors.

Scenario configs (:mod:`migration_abm.config`), experiment specs, calibration specs and siting settings
declare their fields with :func:`param` on dataclasses and are built by :func:`build`; anything unknown,
mistyped or out of range raises a :class:`ConfigError` naming the file, the dotted key and the value.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import field
from pathlib import Path
from typing import Any

from migration_abm.errors import ConfigError

#: string values of path fields that name something packaged rather than a file
PACKAGED = ("chongqing", "none")


def param(default: Any, lo: float | None = None, hi: float | None = None, doc: str = "",
          choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field with a valid range [lo, hi] (or allowed ``choices``) and a one-line description."""
    meta = {"min": lo, "max": hi, "doc": doc, "choices": choices}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def merge(base: dict, over: dict, prov: dict[str, str], source: str, prefix: str = "") -> dict:
    """Deep-merge ``over`` into ``base`` (tables merge, values replace), recording provenance."""
    out = dict(base)
    for k, v in over.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v, prov, source, key + ".")
        else:
            out[k] = v
            _mark(v, key, source, prov)
    return out


def _mark(v: Any, key: str, source: str, prov: dict[str, str]) -> None:
    prov[key] = source
    if isinstance(v, dict):
        for k2, v2 in v.items():
            _mark(v2, f"{key}.{k2}", source, prov)


#: longest ``extends`` chain accepted (a cycle or a generated chain fails cleanly instead of recursing)
MAX_EXTENDS_DEPTH = 32


def read_toml_file(path: Path, what: str = "config") -> dict:
    """Parse a TOML file; a missing, unreadable, non-UTF-8 or malformed file is a one-line ConfigError."""
    src = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(src, "file", src, f"{what} file not found") from None
    except IsADirectoryError:
        raise ConfigError(src, "file", src, f"is a folder; a {what} TOML file is needed") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(src, "file", src, f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(src, "file", src, f"cannot read {what} file ({exc.strerror or exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(src, "file", src, f"invalid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(src, "file", src, "invalid TOML (nested too deeply)") from None


def _extends_target(raw: dict, path: Path) -> Path | None:
    """The file ``raw``'s ``extends`` names (relative to ``path``), checked to be an existing file."""
    if "extends" not in raw:
        return None
    parent, src = raw.pop("extends"), str(path)
    if not isinstance(parent, str) or not parent.strip() or "\x00" in parent:
        raise ConfigError(src, "extends", parent, "must be a path string naming a TOML file")
    target = (path.parent / parent).resolve()
    if target.is_dir():
        raise ConfigError(src, "extends", parent, "is a folder, not a TOML file")
    if not target.exists():
        raise ConfigError(src, "extends", parent, f"file not found ({target})")
    return target


def read_toml(path: Path, prov: dict[str, str], seen: tuple[Path, ...] = (),
              path_keys: dict[str, tuple[str, ...]] | None = None) -> dict:
    """Read a TOML file following ``extends`` (relative to the file), recording which file set each
    dotted key in ``prov``. String values under ``path_keys`` ({table: keys}) are made absolute
    relative to the file that names them (packaged names such as 'chongqing' stay). The chain is read
    iteratively and may be at most :data:`MAX_EXTENDS_DEPTH` files long."""
    chain: list[tuple[Path, dict]] = []
    visited = list(seen)
    current: Path | None = path.resolve()
    while current is not None:
        if current in visited:
            raise ConfigError(str(chain[-1][0] if chain else current), "extends", str(current), "circular extends")
        if len(chain) == MAX_EXTENDS_DEPTH:
            raise ConfigError(str(chain[-1][0]), "extends", str(current),
                              f"extends chain longer than {MAX_EXTENDS_DEPTH} files")
        raw = read_toml_file(current)
        visited.append(current)
        chain.append((current, raw))
        nxt = _extends_target(raw, current)
        for table, keys in (path_keys or {}).items():
            node = raw.get(table) if table else raw
            if isinstance(node, dict):
                for k in keys:
                    v = node.get(k)
                    if isinstance(v, str) and (not v.strip() or "\x00" in v):
                        raise ConfigError(str(current), f"{table}.{k}" if table else k, v,
                                          f"must name a file or one of {', '.join(PACKAGED)}")
                    if isinstance(v, str) and v not in PACKAGED and not Path(v).is_absolute():
                        node[k] = str((current.parent / v).resolve())
        current = nxt
    merged: dict = {}
    for file, raw in reversed(chain):
        merged = merge(merged, raw, prov, str(file))
    return merged


def parse_value(text: str) -> Any:
    """A ``--set`` value: TOML syntax if it parses (numbers, booleans, lists, tables), else a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict, overrides: dict[str, Any] | list[str], source: str, prov: dict[str, str]) -> None:
    """Set dotted keys in a raw nested dict from ``{"a.b": v}`` or ``["a.b=v"]`` (parsed as TOML)."""
    if isinstance(overrides, dict):
        items = list(overrides.items())
    else:
        items = []
        for item in overrides:
            if "=" not in item:
                raise ConfigError(source, item, item, "expected KEY=VALUE")
            k, v = item.split("=", 1)
            items.append((k.strip(), parse_value(v.strip())))
    for key, value in items:
        parts = key.split(".")
        node = raw
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
                prov[".".join(parts[: i + 1])] = source  # a table --set created is blamed on --set
            if not isinstance(nxt, dict):
                raise ConfigError(source, ".".join(parts[: i + 1]), nxt, "is not a table")
            node = nxt
        node[parts[-1]] = value
        _mark(value, key, source, prov)


def check_number(v: Any, meta: dict, src: str, key: str) -> None:
    """A finite number inside the field's [min, max]."""
    if isinstance(v, float) and not math.isfinite(v):
        raise ConfigError(src, key, v, "must be a finite number")
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and v < lo:
        raise ConfigError(src, key, v, f"must be >= {lo}")
    if hi is not None and v > hi:
        raise ConfigError(src, key, v, f"must be <= {hi}")


def coerce(tp: Any, v: Any, meta: dict, prov: dict[str, str], default_src: str, key: str) -> Any:
    """Check one value against its type hint and range metadata; returns the typed value."""
    src = prov.get(key, default_src)
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(v, dict):
            raise ConfigError(src, key, v, "must be a table")
        return build(tp, v, prov, default_src, key + ".")
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if v is None else coerce(args[0], v, meta, prov, default_src, key)
    if origin is dict:
        if not isinstance(v, dict):
            raise ConfigError(src, key, v, "must be a table")
        val_tp = typing.get_args(tp)[1]
        return {str(k): coerce(val_tp, x, meta, prov, default_src, f"{key}.{k}") for k, x in v.items()}
    if origin is list:
        if not isinstance(v, list):
            raise ConfigError(src, key, v, "must be a list")
        return [coerce(typing.get_args(tp)[0], x, meta, prov, default_src, f"{key}[{i}]") for i, x in enumerate(v)]
    if tp is Any:
        return v
    if tp is bool:
        if not isinstance(v, bool):
            raise ConfigError(src, key, v, "must be true or false")
        return v
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(src, key, v, "must be an integer")
        check_number(v, meta, src, key)
        return v
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(src, key, v, "must be a number")
        check_number(float(v), meta, src, key)
        return float(v)
    if tp is str:
        if not isinstance(v, str):
            raise ConfigError(src, key, v, "must be a string")
        choices = meta.get("choices")
        if choices and v not in choices:
            raise ConfigError(src, key, v, f"use one of {', '.join(choices)}" + did_you_mean(v, choices))
        return v
    raise TypeError(f"unsupported config type {tp!r} at {key}")  # pragma: no cover - schema bug


def build(cls: type, data: dict, prov: dict[str, str], default_src: str, prefix: str = "") -> Any:
    """Validate a raw nested dict into the dataclass ``cls``; dict fields keep unnamed defaults."""
    hints = typing.get_type_hints(cls)
    fmap = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for k, v in data.items():
        if k not in fmap:
            key = f"{prefix}{k}"
            raise ConfigError(prov.get(key, default_src), key, v, "unknown key" + did_you_mean(k, fmap))
    kwargs = {name: coerce(hints[name], data[name], dict(f.metadata), prov, default_src, prefix + name)
              for name, f in fmap.items() if name in data}
    obj = cls(**kwargs)
    # dict fields keep defaults for keys not given (e.g. one region overridden)
    for name, f in fmap.items():
        if name in data and typing.get_origin(hints[name]) is dict and f.default_factory is not dataclasses.MISSING:
            merged = {**f.default_factory(), **getattr(obj, name)} if name != "siting" else getattr(obj, name)
            setattr(obj, name, merged)
    return obj


def did_you_mean(name: str, known: typing.Iterable[str]) -> str:
    """'; did you mean X?' for the closest known key, '' if none is close."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def field_docs(cls: type, prefix: str = "") -> dict[str, str]:
    """Dotted key → "[min, max] doc" for every documented field of a schema dataclass (recursively)."""
    out: dict[str, str] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        key = prefix + f.name
        if dataclasses.is_dataclass(hints[f.name]):
            out.update(field_docs(hints[f.name], key + "."))
            continue
        m = f.metadata
        rng = "" if m.get("min") is None and m.get("max") is None else \
            f"[{'-inf' if m.get('min') is None else m['min']}, {'inf' if m.get('max') is None else m['max']}] "
        if m.get("choices"):
            rng = "{" + ", ".join(m["choices"]) + "} "
        if rng or m.get("doc"):
            out[key] = (rng + m.get("doc", "")).strip()
    return out


def annotate_toml(text: str, docs: dict[str, str]) -> str:
    """Append ``# range doc`` comments to the ``key = value`` lines of TOML text written by dumps_toml."""
    table, lines = "", []
    for line in text.splitlines():
        if line.startswith("[") and line.endswith("]"):
            table = line.strip("[]") + "."
        elif " = " in line:
            doc = docs.get(table + line.split(" = ", 1)[0].strip('"'))
            if doc:
                line = f"{line}  # {doc}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def load(cls: type, path: str | Path | None, overrides: dict[str, Any] | list[str] = (),
         override_source: str = "--set", path_keys: dict[str, tuple[str, ...]] | None = None,
         check: Callable[[Any, dict[str, str]], None] | None = None) -> Any:
    """Read a TOML file (following ``extends``), apply overrides, build ``cls`` and run ``check``."""
    prov: dict[str, str] = {}
    source = str(Path(path).resolve()) if path is not None else "<defaults>"
    try:
        raw = read_toml(Path(path), prov, path_keys=path_keys) if path is not None else {}
        if overrides:
            apply_overrides(raw, overrides, override_source, prov)
        obj = build(cls, raw, prov, source)
    except RecursionError:
        raise ConfigError(source, "file", source, "tables nested too deeply") from None
    if hasattr(obj, "source"):
        obj.source = source
    if check is not None:
        check(obj, prov)
    return obj


# --------------------------------------------------------------------------------------------------
# TOML output (tomllib reads only)
# --------------------------------------------------------------------------------------------------

def _toml_scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if math.isfinite(v) else ("nan" if v != v else ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_scalar(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else _toml_scalar(k)


def dumps_toml(d: dict[str, Any], prefix: str = "") -> str:
    """Serialise a nested dict: scalars first, sub-tables as [a.b] sections."""
    lines, tables = [], []
    for k, v in d.items():
        if isinstance(v, dict) and any(isinstance(x, dict) for x in v.values()) or (isinstance(v, dict) and not prefix and v):
            tables.append((k, v))
        else:
            lines.append(f"{_toml_key(k)} = {_toml_scalar(v)}")
    out = "\n".join(lines)
    for k, v in tables:
        name = f"{prefix}{_toml_key(k)}"
        body = dumps_toml(v, name + ".")
        out += f"\n\n[{name}]\n{body}" if out or prefix else f"[{name}]\n{body}"
    return out.strip("\n") + ("\n" if not prefix else "")
