"""YAML text -> plain data plus the line and column of every key and value, for located policy errors.

PyYAML's safe loader composes the node tree; this module walks it once, building the same dicts, lists and
scalars ``yaml.safe_load`` would while recording each node's start mark under its path (``("providers",
"groq", "priority")``). Two deliberate differences from ``safe_load``: only ``true``/``false`` are booleans
(YAML 1.1 also reads ``on``, ``off``, ``yes`` and ``no`` as booleans, so ``resume: off`` stays the string),
and a repeated key is an error instead of silently keeping the last value.

The nodes are composed by libyaml when PyYAML was built with it (about 15 times faster: a 10,000-model
policy parses in tens of milliseconds instead of half a second); a text libyaml rejects is parsed again by
the pure-Python parser, so a syntax error reads the same, with the same place, either way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from router.errors import PolicyError, PolicyIssue

Path = tuple[str | int, ...]
_STR = "tag:yaml.org,2002:str"


class _Loader(yaml.SafeLoader):
    """The safe loader with YAML 1.2's booleans: ``on``, ``off``, ``yes`` and ``no`` stay strings."""


_LIBYAML: bool = yaml.__with_libyaml__


class _CLoader(yaml.CSafeLoader if _LIBYAML else yaml.SafeLoader):  # type: ignore[misc]
    """:class:`_Loader` over libyaml's parser (used only when PyYAML was built with libyaml)."""


for _cls in (_Loader, _CLoader):
    _cls.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )


@dataclass(slots=True)
class Positions:
    """1-based (line, column) of each value and each mapping key, by path."""

    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def find(self, path: Sequence[str | int], *, at_key: bool = False) -> tuple[int | None, int | None]:
        """The place of ``path``, or of its nearest recorded ancestor; (None, None) without YAML."""
        path = tuple(path)
        if at_key and path in self.keys:
            return self.keys[path]
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path, (None, None))

    def copy(self, old: Sequence[str | int], new: Sequence[str | int]) -> None:
        """Give ``new`` and everything below it the places of ``old`` (a renamed key reads as its old self)."""
        old, new = tuple(old), tuple(new)
        for table in (self.values, self.keys):
            for path, place in list(table.items()):
                if path[: len(old)] == old:
                    table[(*new, *path[len(old) :])] = place


def parse(text: str, file: str) -> tuple[Any, Positions, list[PolicyIssue]]:
    """Parse one YAML document into data, places and the non-fatal issues found (repeated keys).

    A syntax error, several documents or an empty text raise PolicyError with the place of the problem.
    """
    if not _LIBYAML:
        return _parse(text, file, _Loader)
    try:
        return _parse(text, file, _CLoader)
    except PolicyError:
        return _parse(text, file, _Loader)  # the pure parser's message and place, as without libyaml


def _parse(text: str, file: str, loader_class: type[Any]) -> tuple[Any, Positions, list[PolicyIssue]]:
    loader = loader_class(text)
    walker = _Walker(loader, file)
    try:
        node = loader.get_single_node()
        if node is None:
            raise PolicyError([PolicyIssue(file, 1, 1, "", "the policy is empty")])
        data = walker.walk(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise PolicyError([PolicyIssue(file, line, column, "", f"YAML: {message}")]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([PolicyIssue(file, None, None, "", f"YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return data, walker.positions, walker.issues


class _Walker:
    def __init__(self, loader: _Loader | _CLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.positions = Positions()
        self.issues: list[PolicyIssue] = []
        self._open: set[int] = set()

    def walk(self, node: Node, path: Path) -> Any:
        self.positions.values.setdefault(path, _mark(node))
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        if id(node) in self._open:  # an alias that contains itself
            self._issue(node, "a YAML alias may not contain itself", path)
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
            return self.loader.construct_object(node, deep=True)
        finally:
            self._open.discard(id(node))

    def _scalar(self, node: ScalarNode) -> Any:
        """A scalar's value; a string (most of a policy) is its text as it stands, as the constructor would
        return it, without the constructor's bookkeeping (a third of the walk's time on a large policy)."""
        if node.tag == _STR:
            return node.value
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: MappingNode, path: Path) -> dict[Any, Any]:
        self.loader.flatten_mapping(node)  # resolves "<<" merge keys
        result: dict[Any, Any] = {}
        first_seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self._issue(key_node, "a mapping key must be a plain value", path)
                continue
            key = self._scalar(key_node)
            if key in first_seen:
                message = f"duplicate key (first at line {first_seen[key]})"
                self._issue(key_node, message, (*path, key))
                continue
            first_seen[key] = key_node.start_mark.line + 1
            self.positions.keys[(*path, key)] = _mark(key_node)
            result[key] = self.walk(value_node, (*path, key))
        return result

    def _issue(self, node: Node, message: str, path: Path) -> None:
        line, column = _mark(node)
        self.issues.append(PolicyIssue(self.file, line, column, dotted(path), message))


def dotted(path: Sequence[str | int]) -> str:
    """``("routes", "chat", "pins", 0, "route")`` -> ``routes.chat.pins[0].route``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _mark(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1
