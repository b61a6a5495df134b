"""Untrusted TOML files validated at the edge with pydantic, with errors a person can act on.

Shared by the scenario loader and the simulator's effects files: every problem becomes one line
``source: field.path: message``, an unknown key names the keys that table allows.
"""

from __future__ import annotations

import tomllib
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed in the table that holds ``loc``'s last key, found by walking ``model``'s fields (through
    list items and dict values); empty when the walk leaves the models."""
    node: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) and typing.get_origin(node) is list:
            node = typing.get_args(node)[0]
        elif isinstance(node, type) and issubclass(node, BaseModel) and part in node.model_fields:
            node = node.model_fields[part].annotation
        elif typing.get_origin(node) is dict:
            node = typing.get_args(node)[1]
        else:
            return []
    if isinstance(node, type) and issubclass(node, BaseModel):
        return list(node.model_fields)
    return []


def validate_toml(text_bytes: bytes, source: str, model: type[M], error: type[Exception]) -> M:
    """Parse TOML bytes and validate them as ``model``.

    Raises ``error(message)`` with one line per problem (``source: field.path: message``) for text that is not
    UTF-8, not TOML, or does not match the model.
    """
    try:
        raw: Any = tomllib.loads(text_bytes.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{source}: not UTF-8 text ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{source}: not valid TOML: {exc}") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                allowed = allowed_keys(model, tuple(err["loc"]))
                msg = f"unknown key {str(err['loc'][-1])!r}; expected one of {', '.join(allowed)}"
            lines.append(f"{source}: {loc}: {msg}")
        raise error("\n".join(lines)) from None
