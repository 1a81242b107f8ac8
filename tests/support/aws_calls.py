"""Which AWS API calls each phase handler can make, read statically from `lambdas/`.

moto does not enforce IAM, so the workflow tests pass whatever the permission table says. This
reads the handlers' code instead: from a handler module, it follows calls into the package's
functions (`from lambdas.logic.x import f`, `lock.release(...)`) and collects every method call
that is a boto3 operation, e.g. `ec2.describe_instances(...)` -> `ec2:DescribeInstances`. The
receiver's name (`ec2`, `ssm`, ...) or `client("ssm")` says which service; an operation name
that only one of our services has needs no receiver hint.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name

# boto3 service name -> IAM action prefix, for the services the handlers use.
SERVICES = {
    "ec2": "ec2",
    "ssm": "ssm",
    "kms": "kms",
    "dynamodb": "dynamodb",
    "sts": "sts",
    "sns": "sns",
    "stepfunctions": "states",
    "sfn": "states",
    "states": "states",
}
# Receiver names that mean a service, beyond the service's own name.
ALIASES = {"sfn": "stepfunctions", "states": "stepfunctions"}
# Client methods that name an operation in their first argument.
NAMING_METHODS = ("get_paginator", "can_paginate")


@cache
def operations(service: str) -> dict[str, str]:
    """snake_case method -> IAM action for one boto3 service."""
    model = botocore.session.get_session().get_service_model(service)
    prefix = SERVICES[service]
    return {xform_name(op): f"{prefix}:{op}" for op in model.operation_names}


def boto_services() -> tuple[str, ...]:
    return tuple(s for s in SERVICES if s not in ALIASES)


@dataclass
class Function:
    module: str
    name: str
    calls: set[tuple[str | None, str]] = field(default_factory=set)  # (service hint, method)
    edges: set[tuple[str, str]] = field(default_factory=set)  # (module, function)


@dataclass
class Module:
    name: str
    functions: dict[str, Function] = field(default_factory=dict)
    imported_functions: dict[str, tuple[str, str]] = field(default_factory=dict)
    imported_modules: dict[str, str] = field(default_factory=dict)


class Package:
    """The parsed `lambdas` package."""

    def __init__(self, root: Path, package: str = "lambdas") -> None:
        self.root = root
        self.package = package
        self.modules: dict[str, Module] = {}
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).with_suffix("")
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            name = ".".join(parts)
            self.modules[name] = self._parse(name, path)

    def _parse(self, name: str, path: Path) -> Module:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        module = Module(name)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if not node.module.startswith(self.package):
                    continue
                for alias in node.names:
                    local = alias.asname or alias.name
                    candidate = f"{node.module}.{alias.name}"
                    if (self.root / Path(*candidate.split("."))).with_suffix(".py").exists():
                        module.imported_modules[local] = candidate
                    else:
                        module.imported_functions[local] = (node.module, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith(self.package):
                        module.imported_modules[alias.asname or alias.name] = alias.name
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                module.functions[node.name] = self._function(module, node)
        return module

    def _function(self, module: Module, node: ast.AST) -> Function:
        function = Function(module.name, getattr(node, "name", "?"))
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            target = call.func
            if isinstance(target, ast.Name):
                function.edges.add((module.name, target.id))
                if target.id in module.imported_functions:
                    function.edges.add(module.imported_functions[target.id])
            elif isinstance(target, ast.Attribute):
                receiver = target.value
                if isinstance(receiver, ast.Name) and receiver.id in module.imported_modules:
                    function.edges.add((module.imported_modules[receiver.id], target.attr))
                    continue
                hint = _service_hint(receiver)
                method = target.attr
                if method in NAMING_METHODS and call.args:
                    first = call.args[0]
                    if isinstance(first, ast.Constant) and isinstance(first.value, str):
                        method = first.value
                function.calls.add((hint, method))
            # Functions passed as values are followed too: our own (callbacks) and bound client
            # methods (`_existing(ec2.describe_vpcs, ...)`), which count as calls.
            for argument in [*call.args, *(k.value for k in call.keywords)]:
                if isinstance(argument, ast.Name):
                    function.edges.add((module.name, argument.id))
                elif isinstance(argument, ast.Attribute):
                    hint = _service_hint(argument.value)
                    if hint is not None:
                        function.calls.add((hint, argument.attr))
        return function

    def reachable(self, module: str) -> Iterator[Function]:
        """Every package function reachable from the functions defined in `module`."""
        seen: set[tuple[str, str]] = set()
        todo = [(module, name) for name in self.modules[module].functions]
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            owner = self.modules.get(key[0])
            function = owner.functions.get(key[1]) if owner else None
            if function is None:
                continue
            yield function
            todo.extend(function.edges)

    def actions(self, module: str) -> set[str]:
        """IAM actions of every boto3 call reachable from `module`."""
        found: set[str] = set()
        for function in self.reachable(module):
            for hint, method in function.calls:
                found |= _actions_for(hint, method)
        return found


def _service_hint(receiver: ast.expr) -> str | None:
    if isinstance(receiver, ast.Name) and receiver.id in SERVICES:
        return ALIASES.get(receiver.id, receiver.id)
    if isinstance(receiver, ast.Call) and receiver.args:  # client("ssm").get_parameter(...)
        first = receiver.args[0]
        if isinstance(first, ast.Constant) and first.value in SERVICES:
            return ALIASES.get(str(first.value), str(first.value))
    return None


def _actions_for(hint: str | None, method: str) -> set[str]:
    if hint is not None:
        action = operations(hint).get(method)
        return {action} if action else set()
    return {ops[method] for ops in map(operations, boto_services()) if method in ops}
