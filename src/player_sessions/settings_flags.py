"""The `serve` flags, one per field of ``config.Settings``, derived from the model itself.

A field ``max_events`` is the flag ``--max-events``; a boolean that is on by default is turned off by
``--no-<name>`` and one that is off by default is turned on by ``--<name>``. The help text is the field's
description, its default and its environment variable. Every flag defaults to None, so that a flag
not given leaves the environment's value (or the model's default) in place; values are parsed and
validated by the model, exactly as the same text in the environment would be (durations such as
``365d``, instants, comma-separated lists, ``true``/``false``).
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic.fields import FieldInfo

from player_sessions.config import Settings

ENV_PREFIX = "PLAYER_SESSIONS_"

# Settings listed here get no `serve` flag and are set through their environment variable only (the
# reference table says so). Keep it for values that must not appear on a command line at all; a secret
# that merely should not (--password, --cursor-keys) keeps its flag and says to prefer the variable.
ENV_ONLY: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SettingFlag:
    """One setting's `serve` flag: its option string and the keyword arguments of ``add_argument``."""

    name: str
    flag: str
    options: dict[str, object] = field(default_factory=dict)


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def default_text(value: object) -> str:
    """A default as an operator would type it: ``365d``, ``true``, ``unset``."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
            if seconds % size == 0:
                return f"{seconds // size}{unit}"
        return f"{seconds}s"
    return str(value)


def _value_type(info: FieldInfo) -> object:
    """The field's type without ``| None``."""
    annotation = info.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


# What a value looks like, where the field's name alone does not say.
_METAVARS: dict[object, str] = {timedelta: "DURATION", datetime: "INSTANT"}


def _help(name: str, info: FieldInfo, prefix: str = "") -> str:
    text = f"{prefix}{info.description or name} (default {default_text(info.default)}; {env_name(name)})"
    return text.replace("%", "%%")  # argparse formats help texts with %


def setting_flag(name: str, info: FieldInfo) -> SettingFlag:
    dashed = name.replace("_", "-")
    kind = _value_type(info)
    if kind is bool:
        if info.default is True:
            return SettingFlag(
                name,
                f"--no-{dashed}",
                {
                    "dest": name,
                    "action": "store_const",
                    "const": False,
                    "help": _help(name, info, "turn off: "),
                },
            )
        return SettingFlag(
            name, f"--{dashed}", {"action": "store_const", "const": True, "help": _help(name, info)}
        )
    options: dict[str, object] = {"help": _help(name, info)}
    if kind is int or kind is float:
        options["type"] = kind
        options["metavar"] = "N" if kind is int else "NUMBER"
    elif typing.get_origin(kind) is typing.Literal:
        options["choices"] = typing.get_args(kind)
    elif kind in _METAVARS:
        options["metavar"] = _METAVARS[kind]
    # Everything else (text, durations, instants, comma lists) goes to the model as the text typed.
    return SettingFlag(name, f"--{dashed}", options)


def setting_flags(names: Iterable[str] | None = None) -> list[SettingFlag]:
    """The flags of ``names`` (all settings but ENV_ONLY when None), in the model's order."""
    wanted = set(Settings.model_fields) - ENV_ONLY if names is None else set(names)
    unknown = wanted - set(Settings.model_fields)
    if unknown:
        raise ValueError(f"not settings: {', '.join(sorted(unknown))}")
    return [setting_flag(name, info) for name, info in Settings.model_fields.items() if name in wanted]


def add_setting_flags(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    for spec in setting_flags(names):
        parser.add_argument(spec.flag, default=None, **spec.options)  # type: ignore[arg-type]
