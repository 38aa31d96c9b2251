"""ROS 2 type names <-> generated protobuf classes, and ROS 2 name rules.

On the wire a message type is named ``package/msg/Name`` (``sensor_msgs/msg/Image``) and its payload is
the protobuf message ``package.Name`` (``sensor_msgs.Image``). RoboSim's own messages and its service
requests and responses all live in the protobuf package ``robosim``, whether they are defined in
``robosim/msg.proto`` or ``robosim/srv.proto``; both are named ``robosim/msg/<Name>``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import threading
from typing import Dict, Type, Union

from google.protobuf.message import Message

from . import msgs as _msgs

__all__ = [
    "MAX_NAME_BYTES",
    "type_name",
    "message_class",
    "all_type_names",
    "validate_topic_name",
    "is_valid_topic_name",
    "validate_type_name",
]

#: Longest topic or service name accepted, in bytes (same limit as the server).
MAX_NAME_BYTES = 256

_TYPE_RE = re.compile(r"^([a-z][a-z0-9_]*)/(msg|srv)/([A-Z][A-Za-z0-9]*)$")

_registry: Dict[str, Type[Message]] = {}
_registry_lock = threading.Lock()


def _load_registry() -> Dict[str, Type[Message]]:
    """Imports every generated ``*_pb2`` module once and indexes its messages by protobuf full name."""
    if _registry:
        return _registry
    with _registry_lock:
        if _registry:
            return _registry
        table: Dict[str, Type[Message]] = {}
        for pkg in _msgs.PACKAGES:
            package = importlib.import_module(f"{_msgs.__name__}.{pkg}")
            for info in pkgutil.iter_modules(package.__path__):
                if not info.name.endswith("_pb2"):
                    continue
                module = importlib.import_module(f"{package.__name__}.{info.name}")
                for name in module.DESCRIPTOR.message_types_by_name:
                    _index(getattr(module, name), table)
        _registry.update(table)
    return _registry


def _index(cls: Type[Message], table: Dict[str, Type[Message]]) -> None:
    table[cls.DESCRIPTOR.full_name] = cls
    for nested in cls.DESCRIPTOR.nested_types:
        _index(getattr(cls, nested.name), table)


def type_name(msg: Union[Message, Type[Message]]) -> str:
    """The ROS 2 type name of a protobuf message or message class.

    >>> from robosim.msgs.sensor_msgs import msg_pb2
    >>> type_name(msg_pb2.Image)
    'sensor_msgs/msg/Image'
    """
    descriptor = getattr(msg, "DESCRIPTOR", None)
    if descriptor is None or not hasattr(descriptor, "full_name") or not hasattr(descriptor, "file"):
        raise TypeError(f"not a protobuf message or message class: {msg!r}")
    package = descriptor.file.package
    local = descriptor.full_name[len(package) + 1:] if package else descriptor.full_name
    return f"{package.replace('.', '_')}/msg/{local}"


def message_class(name: str) -> Type[Message]:
    """The generated class for a ROS 2 type name (``sensor_msgs/msg/Image`` -> ``sensor_msgs.Image``).

    ``package/srv/Name`` is accepted too and means the same message. Raises ``ValueError`` for a
    malformed name and ``KeyError`` for a well-formed name that no ``.proto`` defines.
    """
    if not isinstance(name, str):
        raise TypeError(f"type name must be a str, not {type(name).__name__}")
    match = _TYPE_RE.match(name)
    if match is None:
        raise ValueError(f"invalid type name {name!r}: expected package/msg/Name")
    full = f"{match.group(1)}.{match.group(3)}"
    try:
        return _load_registry()[full]
    except KeyError:
        raise KeyError(f"unknown message type {name!r} (no protobuf message {full})") from None


def all_type_names() -> list:
    """Every known top-level message type as a ROS 2 type name, sorted."""
    return sorted(type_name(c) for c in _load_registry().values() if c.DESCRIPTOR.containing_type is None)


def validate_type_name(name: str) -> str:
    """Checks a ``package/msg/Name`` type name; returns it or raises ``ValueError``."""
    if not isinstance(name, str) or len(name.encode()) > MAX_NAME_BYTES or not _TYPE_RE.match(name):
        raise ValueError(f"invalid type name {name!r}: expected package/msg/Name")
    return name


def _topic_problem(name: str) -> Union[str, None]:
    data = name.encode("utf-8")
    if not data:
        return "empty"
    if len(data) > MAX_NAME_BYTES:
        return f"longer than {MAX_NAME_BYTES} bytes"
    if not name.startswith("/"):
        return "must start with '/'"
    if name == "/":
        return "'/' alone is not a topic"
    if name.endswith("/"):
        return "must not end with '/'"
    if "__" in name:
        return "must not contain '__'"
    for token in name[1:].split("/"):
        if not token:
            return "empty token ('//')"
        bad = re.search(r"[^A-Za-z0-9_]", token)
        if bad:
            return f"character {bad.group(0)!r} not allowed (only A-Z a-z 0-9 _ /)"
        if token[0].isdigit():
            return "a token must not start with a digit"
    return None


def validate_topic_name(name: str) -> str:
    """Checks a fully qualified ROS 2 topic or service name; returns it or raises ``ValueError``.

    Rules (docs/wire-protocol.md): starts with ``/``; tokens of ``[A-Za-z0-9_]`` separated by single
    ``/``; no token starts with a digit; no ``__``; no trailing ``/``; at most 256 bytes.
    """
    if not isinstance(name, str):
        raise TypeError(f"topic name must be a str, not {type(name).__name__}")
    problem = _topic_problem(name)
    if problem is not None:
        raise ValueError(f"invalid topic name {name!r}: {problem}")
    return name


def is_valid_topic_name(name: str) -> bool:
    """True when ``name`` is a valid fully qualified topic or service name."""
    return isinstance(name, str) and _topic_problem(name) is None
