"""Settings from the command line and their types: one KEY=VALUE parser, one type check.

Why a type check: a command line gives strings, and ``bool("False")`` is True, so a mistyped setting
used to change the run silently (``freeze_bn=False`` left BatchNorm frozen). Every env keyword is
now checked against the annotation of ``SegALEnv.__init__``, and the error names the key, the type
it needs and what was given.
"""
from __future__ import annotations

import json
import types
import typing
from typing import Any, Callable

import numpy as np

_WORDS = {"true": True, "false": False, "none": None, "null": None}


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (numbers, lists, dicts, true/false/null), Python's
    True/False/None in any case, else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return _WORDS.get(text.strip().lower(), text)


def parse_key_values(items: list[str] | None, option: str) -> dict[str, Any]:
    """``["a=1", "b=[2,3]", "c=text", "d=False"]`` -> ``{"a": 1, "b": [2, 3], "c": "text", "d": False}``.

    Raises ValueError naming ``option`` for an item that is not KEY=VALUE or a key given twice.
    """
    parsed: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not key.isidentifier():
            raise ValueError(f"{option}: expected KEY=VALUE with KEY a Python identifier, got {item!r}")
        if key in parsed:
            raise ValueError(f"{option}: {key!r} given twice")
        parsed[key] = parse_value(raw)
    return parsed


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the annotation ``hint`` (JSON-style: an int is a float, a bool is not a number)."""
    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if hint is bool:
        return isinstance(value, (bool, np.bool_))
    if hint is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if hint is float:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if hint is str:
        return isinstance(value, str)
    if origin is list or hint is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value) if args else isinstance(value, list)
    if origin is tuple or hint is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return not args or (len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args)))
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _describe(hint: Any) -> str:
    if hint is None or hint is type(None):
        return "None"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if origin is not None:
        args = ", ".join("..." if a is Ellipsis else _describe(a) for a in typing.get_args(hint))
        return f"{origin.__name__}[{args}]" if args else origin.__name__
    return getattr(hint, "__name__", str(hint))


def check_types(function: Callable, settings: dict[str, Any], what: str = "setting") -> None:
    """Raise TypeError for the first value in ``settings`` that does not fit ``function``'s annotation."""
    hints = typing.get_type_hints(function)
    for key, value in settings.items():
        if key in hints and not _matches(value, hints[key]):
            raise TypeError(
                f"{what} '{key}' must be {_describe(hints[key])}, got {value!r} ({type(value).__name__})"
                + ("; on the command line write true/false, not a quoted string" if hints[key] in (bool, bool | None)
                   and isinstance(value, str) else "")
            )
