"""Reading a YAML study file while remembering on which line each key was written."""

from __future__ import annotations

import re
from typing import Any

import yaml

from optuna_bigmodel.spec._errors import KeyPath
from optuna_bigmodel.spec._errors import SpecError


class _Loader(yaml.SafeLoader):
    """A safe loader that also reads ``1e-4`` as a number.

    YAML 1.1 wants a dot in a float (``1.0e-4``) and reads ``1e-4`` as a string, which is never
    what someone writing a learning rate means.
    """


# Copy the resolver table so that adding one does not change yaml.SafeLoader for everyone else.
_Loader.yaml_implicit_resolvers = {
    first: list(resolvers) for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str, source: str) -> tuple[Any, dict[KeyPath, int]]:
    """Parse ``text`` and return the data and, per key path, the 1-based line it was written on.

    Raises:
        SpecError: For malformed YAML (with the line of the error) and for a key written twice
            in one mapping, which YAML would otherwise silently resolve to the last one.
    """
    try:
        return _load(_Loader(text), source)
    except yaml.YAMLError as err:
        raise _yaml_error(err, source, text) from None


def _load(loader: _Loader, source: str) -> tuple[Any, dict[KeyPath, int]]:
    lines: dict[KeyPath, int] = {}
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        # Lines are read before construction, which rewrites merge keys (<<) in place.
        lines[()] = node.start_mark.line + 1
        _record_lines(node, (), lines, source, set())
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


def _yaml_error(err: yaml.YAMLError, source: str, text: str) -> SpecError:
    if isinstance(err, yaml.reader.ReaderError):  # a control character, before any parsing
        line = text.count("\n", 0, err.position) + 1
        code = err.character if isinstance(err.character, int) else ord(err.character)
        detail = f"character #x{code:04x} is not allowed; expected plain text"
        return SpecError(source, (), f"not valid YAML: {detail}", line)
    if not isinstance(err, yaml.MarkedYAMLError):
        return SpecError(source, (), f"not valid YAML ({err}); expected a plain-text YAML file")
    mark = err.problem_mark or err.context_mark
    line = None if mark is None else mark.line + 1
    problem = " ".join(part for part in (err.context, err.problem) if part)
    expected = "valid YAML (check indentation, brackets and quotes)"
    return SpecError(source, (), f"not valid YAML ({problem}); expected {expected}", line)


def _record_lines(
    node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], source: str, active: set[int]
) -> None:
    if id(node) in active:
        return  # an alias of one of its own ancestors
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a complex key; the parser rejects it as a non-string key
            key_path = path + (key_node.value,)
            line = key_node.start_mark.line + 1
            if key_path in lines:
                first = f"first on line {lines[key_path]}"
                detail = f"key {key_node.value!r} is written twice ({first}); expected it once"
                raise SpecError(source, key_path, detail, line)
            lines[key_path] = line
            _record_lines(value_node, key_path, lines, source, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _record_lines(item, path + (index,), lines, source, active)
    active.discard(id(node))
