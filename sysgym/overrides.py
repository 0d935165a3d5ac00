"""``key=value`` arguments of the command line, shared by every command that takes them.

Values are Python literals where they parse as one (``3e-4``, ``True``, ``None``, ``(64, 64)``);
``true``/``false``, ``yes``/``no`` and ``none``/``null`` in any case are booleans and None; a
comma list is a tuple; anything else stays a string. Keys starting with ``env.`` are env kwargs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import Any

_WORDS = {"true": True, "yes": True, "false": False, "no": False, "none": None, "null": None}


def literal(text: str) -> Any:
    """The value a command-line ``text`` stands for (see the module docstring)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    if "," in text:
        return tuple(literal(t.strip()) for t in text.split(",") if t.strip())
    return _WORDS.get(text.lower(), text)


def split_overrides(items: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``["lr=3e-4", "env.scenario=9"]`` -> ({"lr": 3e-4}, {"scenario": 9}) with parsed values."""
    settings: dict[str, Any] = {}
    env_kwargs: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or key == "env.":
            raise ValueError(f"expected key=value, got {item!r}")
        value = literal(text.strip())
        if key.startswith("env."):
            env_kwargs[key[4:]] = value
        else:
            settings[key] = value
    return settings, env_kwargs
