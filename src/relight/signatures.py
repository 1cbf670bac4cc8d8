"""Config schemas read off constructor signatures, so that each default is said once.

:func:`signature_dataclass` turns ``def __init__(self, a: int = 1, b: str | None = None)``
into a dataclass with the same fields, types and defaults: the structured-config schema
Hydra validates a config file against (an unknown key or a wrong type is an error at
composition), or a class's record of its own arguments (``S3NetConfig``).
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import importlib
import inspect
import os
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from omegaconf import MISSING

_SCALARS = (bool, int, float, str)


def config_type(annotation: Any) -> Any:
    """The OmegaConf-compatible type of a parameter annotation: scalars, enums, optional
    values, lists and string-keyed dicts of them; paths become ``str``; anything else
    (callables, modules, tensors) ``Any``."""
    origin = typing.get_origin(annotation)
    if annotation in _SCALARS or (
        inspect.isclass(annotation) and issubclass(annotation, enum.Enum)
    ):
        return annotation
    if annotation in (Path, os.PathLike) or origin is os.PathLike:
        return str
    if origin in (Union, types.UnionType):
        members = typing.get_args(annotation)
        kinds = {config_type(a) for a in members if a is not type(None)}
        enums = {k for k in kinds if inspect.isclass(k) and issubclass(k, enum.Enum)}
        if len(enums) == 1 and kinds - enums == {str}:
            kinds = enums  # str | an Enum: the config holds the enum's names
        member = kinds.pop() if len(kinds) == 1 else Any
        if type(None) in members and member is not Any:
            return typing.Optional[member]  # noqa: UP045 - a runtime type for OmegaConf
        return member
    if origin in (list, tuple, Sequence) or annotation in (list, tuple):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        element = config_type(args[0]) if args and len(set(args)) == 1 else Any
        return list[element]
    if origin in (dict, Mapping) or annotation is dict:
        args = typing.get_args(annotation)
        return dict[str, config_type(args[1]) if len(args) == 2 else Any]
    return Any


def public_path(target: Callable[..., Any]) -> str:
    """The shortest import path of ``target``: ``relight.losses.CompositeLoss`` rather than
    ``relight.losses.composite.CompositeLoss`` when the package exports it."""
    parts = target.__module__.split(".")
    for end in range(1, len(parts) + 1):
        module = importlib.import_module(".".join(parts[:end]))
        if getattr(module, target.__qualname__, None) is target:
            return f"{module.__name__}.{target.__qualname__}"
    return f"{target.__module__}.{target.__qualname__}"


def _parameters(target: Callable[..., Any], follow_kwargs: bool) -> list[inspect.Parameter]:
    """The keyword parameters of ``target`` (a class: its ``__init__``, and with
    ``follow_kwargs`` those of the next ``__init__`` up the MRO that ``**kwargs`` reach)."""
    functions = (
        [c.__dict__["__init__"] for c in target.__mro__ if "__init__" in c.__dict__]
        if inspect.isclass(target)
        else [target]
    )
    found: dict[str, inspect.Parameter] = {}
    for function in functions:
        hints = typing.get_type_hints(function)
        parameters = inspect.signature(function).parameters.values()
        for p in parameters:
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                found.setdefault(p.name, p.replace(annotation=hints.get(p.name, Any)))
        if not follow_kwargs or all(p.kind is not p.VAR_KEYWORD for p in parameters):
            break
    return list(found.values())


def signature_dataclass(
    name: str,
    target: Callable[..., Any],
    *,
    exclude: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
    types_: Mapping[str, Any] | None = None,
    hydra_target: bool = False,
    partial: bool = False,
    follow_kwargs: bool = True,
) -> type:
    """A dataclass with one field per keyword parameter of ``target``, typed by
    :func:`config_type`, with the parameter's default (``MISSING`` when it has none).

    Args:
        name: the dataclass's name.
        target: a class (its ``__init__``) or a function.
        exclude: parameters left out (objects built elsewhere, internal ones).
        defaults, types_: a field's default or type where the signature's will not do.
        hydra_target: add ``_target_`` (the target's import path) as the first field.
        partial: add ``_partial_: true`` (Hydra builds a ``functools.partial``).
        follow_kwargs: a class whose ``__init__`` forwards ``**kwargs`` to its parent's
            takes the parent's parameters too.
    """
    fields: list[tuple[str, Any, dataclasses.Field]] = []
    if hydra_target:
        fields.append(("_target_", str, dataclasses.field(default=public_path(target))))
    if partial:
        fields.append(("_partial_", bool, dataclasses.field(default=True)))
    for p in _parameters(target, follow_kwargs):
        if p.name in exclude:
            continue
        kind = (types_ or {}).get(p.name, config_type(p.annotation))
        default = (defaults or {}).get(p.name, p.default)
        if default is inspect.Parameter.empty:
            default = MISSING
        if isinstance(default, tuple):
            default = list(default)
        if isinstance(default, list | dict) or dataclasses.is_dataclass(default):
            field = dataclasses.field(default_factory=lambda value=default: copy.deepcopy(value))
        else:
            field = dataclasses.field(default=default)
        fields.append((p.name, kind, field))
    doc = f"The arguments of ``{target.__module__}.{target.__qualname__}``."
    return dataclasses.make_dataclass(name, fields, namespace={"__doc__": doc})
