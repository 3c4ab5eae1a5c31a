"""TOML literals for configs: write a value or a table, read back one ``--set`` literal.

The writer covers what run and sweep configs hold (booleans, numbers including ``nan`` and
``inf``, strings with TOML escapes, arrays, inline tables, nested tables); keys that are not bare
TOML keys are quoted. Reading uses the standard library's ``tomllib`` (``tomli`` on 3.10).
"""

from __future__ import annotations

import math
import re
import sys
from typing import Any

from qhn.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["parse_override_value", "toml_table", "toml_value", "tomllib"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    """``value`` (bool, number, string, array or inline table) as a TOML literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in sorted(value.items()))
        return "{" + (f" {items} " if items else "") + "}"
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) as a TOML value")


def toml_table(lines: list[str], header: str, table: dict[str, Any]) -> None:
    """Append ``[header]`` and ``table``'s keys to ``lines``, sub-tables as ``[header.key]``."""
    lines.append(f"[{header}]")
    subtables = []
    for key in sorted(table):
        value = table[key]
        if isinstance(value, dict):
            subtables.append(key)
        elif value is not None:
            lines.append(f"{_toml_key(key)} = {toml_value(value)}")
    for key in subtables:
        lines.append("")
        toml_table(lines, f"{header}.{_toml_key(key)}", table[key])


def parse_override_value(raw: str) -> Any:
    """Parse a ``--set`` value as a TOML literal (number, boolean, array, inline table, quoted
    string); anything else, dates included, is the raw text stripped of surrounding spaces."""
    raw = raw.strip()
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw
    if isinstance(value, (bool, int, float, str, list, dict)):
        return value
    return raw
