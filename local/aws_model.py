"""botocore's service-model constraints that botocore does not check, enforced on every call.

botocore validates only `min` and types; AWS also refuses a member over its `max`, outside its
`enum` or not matching its `pattern`, and moto accepts all of these. This is the generic half of
local/aws_rules.py's check: it reads the rules from the model, so it needs no list of its own.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# botocore's patterns are Java-style (\p{L}...), which the stdlib `re` cannot compile.
import regex  # type: ignore[import-untyped]
from botocore.model import OperationModel, Shape


@dataclass(frozen=True)
class Refusal:
    """What AWS answers a request it refuses: its error code and message."""

    code: str
    message: str


# The code a malformed member gets, by protocol; CloudWatch keeps its query-era code on JSON.
GENERIC_CODES = {
    "ec2": "InvalidParameterValue",
    "query": "ValidationError",
    "cloudwatch": "ValidationError",
}


@functools.cache
def _pattern(pattern: str) -> Any:
    """botocore's patterns are Java/Smithy regexes, searched (not anchored) in the value."""
    try:
        return regex.compile(pattern)
    except regex.error:
        return None


# The Python types a value of each sized shape kind arrives as (blobs may come as text).
_SIZED = {"string": (str,), "blob": (bytes, str), "list": (list,), "map": (dict,)}


def violations(shape: Shape, value: Any, path: str) -> Iterator[str]:
    meta = shape.metadata
    # AWS leaves a secret's value out of its error message, and so do we.
    shown = "" if meta.get("sensitive") else f"Value '{str(value)[:100]}' "
    where = f"{shown}at '{path}' failed to satisfy constraint: Member must"
    if "max" in meta:
        yield from _over_max(shape, value, where)
    if shape.type_name == "string" and isinstance(value, str):
        yield from _string_violations(shape, value, where)
    yield from _member_violations(shape, value, path)


def _over_max(shape: Shape, value: Any, where: str) -> Iterator[str]:
    limit = shape.metadata["max"]
    if shape.type_name in ("integer", "long") and isinstance(value, int):
        if value > limit:
            yield f"{where} have value less than or equal to {limit}"
    elif isinstance(value, _SIZED.get(shape.type_name, ())) and len(value) > limit:
        yield f"{where} have length less than or equal to {limit}"


def _string_violations(shape: Shape, value: str, where: str) -> Iterator[str]:
    if shape.enum and value not in shape.enum:
        yield f"{where} satisfy enum value set: [{', '.join(shape.enum)}]"
    pattern = shape.metadata.get("pattern")
    compiled = _pattern(pattern) if pattern is not None else None
    if compiled is not None and not compiled.search(value):
        yield f"{where} satisfy regular expression pattern: {pattern}"


def _member_violations(shape: Shape, value: Any, path: str) -> Iterator[str]:
    """The violations inside a list, map or structure, each at the path AWS names it by."""
    if shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            yield from violations(shape.member, item, f"{path}.{index + 1}.member")
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            yield from violations(shape.key, key, f"{path}.key")
            yield from violations(shape.value, item, f"{path}.{key}")
    elif shape.type_name == "structure" and isinstance(value, dict):
        members = shape.members
        for name, item in value.items():
            if name in members:
                yield from violations(
                    members[name], item, f"{path}.{name[:1].lower()}{name[1:]}".lstrip(".")
                )


def model_refusal(
    operation: OperationModel, protocol: str, params: dict[str, Any]
) -> Refusal | None:
    if operation.input_shape is None:
        return None
    found = list(violations(operation.input_shape, params, ""))
    if not found:
        return None
    count = f"{len(found)} validation error{'s' if len(found) > 1 else ''} detected: "
    error_code = GENERIC_CODES.get(operation.service_model.service_name) or GENERIC_CODES.get(
        protocol, "ValidationException"
    )
    return Refusal(error_code, count + "; ".join(found))


def model_constraints(operation: OperationModel) -> set[tuple[str, str]]:
    """(shape, constraint) pairs the generic check enforces for one operation's input."""
    found: set[tuple[str, str]] = set()
    seen: set[str] = set()

    def walk(shape: Shape) -> None:
        if shape.name in seen:
            return
        seen.add(shape.name)
        meta = shape.metadata
        if shape.type_name != "boolean" and "max" in meta:
            found.add((shape.name, "max"))
        if shape.type_name == "string" and shape.enum:
            found.add((shape.name, "enum"))
        if shape.type_name == "string" and "pattern" in meta and _pattern(meta["pattern"]):
            found.add((shape.name, "pattern"))
        children: list[Shape] = []
        if shape.type_name == "structure":
            children = list(shape.members.values())
        elif shape.type_name == "list":
            children = [shape.member]
        elif shape.type_name == "map":
            children = [shape.key, shape.value]
        for child in children:
            walk(child)

    if operation.input_shape is not None:
        walk(operation.input_shape)
    return found
