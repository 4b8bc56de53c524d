"""Command-line options built from a flow's parameter model (app/params.py), and parsed
arguments back into it: flags, types, defaults and help are the model's, written once.

An option the user does not give is left out of the arguments (argparse.SUPPRESS), so the
model's default applies.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from collections.abc import Iterable

from pydantic import BaseModel
from pydantic.fields import FieldInfo


def add_options(parser: argparse.ArgumentParser, model: type[BaseModel], names: Iterable[str], **custom: dict) -> None:
    """`--name` for each field in `names` (`--no-name` for a flag that is on by default);
    `custom[name]` holds argparse keywords to change, and `flag` to rename the option."""
    for name in names:
        field = model.model_fields[name]
        kwargs = {"dest": name, "default": argparse.SUPPRESS, **_kind(field), **custom.get(name, {})}
        kwargs.setdefault("help", _help(field, kwargs.get("required", False)))
        flag = kwargs.pop("flag", None) or "--" + ("no-" if field.default is True else "") + name.replace("_", "-")
        parser.add_argument(flag, **kwargs)


def fields_from(args: argparse.Namespace, model: type[BaseModel]) -> dict:
    """The parsed options that are fields of the model: the flow's keyword arguments."""
    return {name: value for name, value in vars(args).items() if name in model.model_fields}


def _json_object(text: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


_json_object.__name__ = "JSON"  # argparse names the type in its error: "invalid JSON value"


def _kind(field: FieldInfo) -> dict:
    kind = field.annotation
    if typing.get_origin(kind) in (typing.Union, types.UnionType):  # X | None
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    origin = typing.get_origin(kind) or kind
    if origin is bool:
        return {"action": "store_false" if field.default else "store_true"}
    if origin is list:
        return {"action": "extend", "nargs": "+", "metavar": "SPEC"}  # repeatable, several at a time
    if origin is typing.Literal:
        return {"choices": typing.get_args(kind)}
    if origin is dict:
        return {"type": _json_object, "metavar": "JSON"}
    return {"type": origin, "metavar": "N" if origin is int else None}


def _help(field: FieldInfo, required: bool) -> str:
    text = (field.description or "").replace("%", "%%")
    default = field.get_default(call_default_factory=False)
    if default is True:
        return f"{text} (on unless given)"
    if not required and default not in (None, True, False, [], {}):
        text += f" (default {default})"
    return text
