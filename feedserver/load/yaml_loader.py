"""The YAML loader of seed files: PyYAML's safe loaders (libyaml's where it is there), with
YAML 1.2 booleans, duplicate keys as errors, a fast constructor for plain documents, and
every failure a SeedError naming its line."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

from ..messages import kind_of_value, one_line, short_repr
from .records import SeedError

_BOOL_TAG = "tag:yaml.org,2002:bool"
_YAML_TAG = "tag:yaml.org,2002:"


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping names the same key twice; `context_mark` is where it was first named."""


def _checked(kind: str, construct: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """A scalar constructor whose failures are YAML errors at the value's line.

    PyYAML's own constructors raise ValueError (`2024-02-30`, `!!int 0x`, an offset of
    `+25:00`), KeyError (`!!bool maybe`), AttributeError (`!!timestamp soon`) or
    OverflowError, with no line; here every one of them becomes a ConstructorError.
    """

    def construct_checked(loader: Any, node: Any) -> Any:
        try:
            return construct(loader, node)
        except yaml.YAMLError:
            raise
        except Exception as error:
            # A KeyError or AttributeError only repeats the value, or says nothing useful.
            silent = isinstance(error, KeyError | AttributeError)
            detail = "" if silent else f" ({one_line(error, 100)})"
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{short_repr(node.value)} is not a valid {kind}{detail}",
                node.start_mark,
            ) from None

    return construct_checked


class _Unusual(Exception):
    """A document the plain constructor leaves to PyYAML's own (see construct_document)."""


# The scalar tags the plain constructor builds with the loader's own (checked) constructors.
_PLAIN_SCALAR_TAGS = frozenset(
    _YAML_TAG + kind for kind in ("null", "bool", "int", "float", "timestamp")
)
_STR_TAG = _YAML_TAG + "str"
_MAP_TAG = _YAML_TAG + "map"
_SEQ_TAG = _YAML_TAG + "seq"


class _SeedConstructor:
    """Mixed into the loaders: a key named twice in one mapping is an error, not last-wins
    (`published: false` above a forgotten `published: true` must not publish). Keys that a
    `<<` merge brings in may still be overridden, as YAML allows.

    Documents are built by a plain recursive constructor first: PyYAML's generic one (its
    recursion bookkeeping, deferred construction, tag dispatch per node) costs more than
    the parsing for a front matter of short scalars. Anything beyond plain mappings,
    sequences and the standard scalar tags (merges, other tags, a repeated key, a value that
    fails) goes to PyYAML's constructor instead, so results and errors are its own.
    """

    def construct_document(self, node: Any) -> Any:
        try:
            return self._plain(node, {})
        except (_Unusual, RecursionError):
            pass
        except Exception:  # PyYAML's constructor raises the error itself, in its own order
            pass
        return super().construct_document(node)  # type: ignore[misc]

    def _plain(self, node: Any, built: dict[int, Any]) -> Any:
        kind = type(node)
        tag = node.tag
        if kind is yaml.ScalarNode:
            if tag == _STR_TAG:
                return node.value
            if tag in _PLAIN_SCALAR_TAGS:
                return self.yaml_constructors[tag](self, node)  # type: ignore[attr-defined]
            raise _Unusual
        # A node an alias repeats is built once and shared, as PyYAML does (so "billion
        # laughs" stays small); one that contains itself is left to PyYAML.
        done = built.get(id(node), built)
        if done is not built:
            if done is None:
                raise _Unusual
            return done
        built[id(node)] = None
        result: Any
        if kind is yaml.MappingNode and tag == _MAP_TAG:
            result = {}
            for key_node, value_node in node.value:
                key = self._plain(key_node, built)
                if key in result or key_node.tag == "tag:yaml.org,2002:merge":
                    raise _Unusual
                result[key] = self._plain(value_node, built)
        elif kind is yaml.SequenceNode and tag == _SEQ_TAG:
            result = [self._plain(item, built) for item in node.value]
        else:
            raise _Unusual
        built[id(node)] = result
        return result

    def flatten_mapping(self, node: Any) -> None:
        own = node.value  # the base class deletes `<<` keys from this very list in place
        super().flatten_mapping(node)  # type: ignore[misc]
        if node.value is not own:  # it put the merged keys in front of the mapping's own
            node.merged_pairs = len(node.value) - len(own)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping, found a {node.id}", node.start_mark
            )
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = yaml.constructor.BaseConstructor.construct_mapping(
            self,  # type: ignore[arg-type]
            node,
            deep,
        )
        # Fewer keys than pairs: a duplicate, or merged keys the mapping overrides. Only then
        # are its own keys compared, so a normal mapping pays one length comparison.
        if len(mapping) < len(node.value):
            first_seen: dict[Any, Any] = {}
            for key_node, _ in node.value[getattr(node, "merged_pairs", 0) :]:
                key = self.construct_object(key_node, deep=deep)  # type: ignore[attr-defined]
                if key in first_seen:
                    raise DuplicateKeyError(
                        None,
                        first_seen[key].start_mark,
                        f"duplicate key {short_repr(key)}",
                        key_node.start_mark,
                    )
                first_seen[key] = key_node
        return mapping


def _seed_loader(base: Any) -> Any:
    """A safe loader class where only true/false are booleans (YAML 1.2), not yes/no/on/off
    (`published: yes` must not publish, and a title `No` stays text), duplicate keys are
    errors, and no scalar can fail without naming its line."""
    resolvers = {
        first: [(tag, pattern) for tag, pattern in entries if tag != _BOOL_TAG]
        for first, entries in base.yaml_implicit_resolvers.items()
    }
    loader: Any = type(
        f"Seed{base.__name__}", (_SeedConstructor, base), {"yaml_implicit_resolvers": resolvers}
    )
    loader.add_implicit_resolver(
        _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    # Only these can fail outside PyYAML's own errors (text and null never do, and wrapping
    # them would slow down every string of every file).
    for kind in ("bool", "int", "float", "timestamp", "binary"):
        tag = _YAML_TAG + kind
        loader.add_constructor(tag, _checked(kind, base.yaml_constructors[tag]))
    return loader


# libyaml's loader is about nine times faster; both are safe_load-level (no Python tags).
PurePythonLoader = _seed_loader(yaml.SafeLoader)
YamlLoader = _seed_loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader))

# libyaml handled 10,000 nested levels here and crashed at 100,000; below this many marks
# (hence below this many characters) a document cannot nest deeply enough to matter.
_MAX_NESTING_MARKS = 5000


def load_yaml_mapping(source: str, first_line: int = 1) -> dict[str, Any]:
    """Parse YAML safely into a mapping; raises SeedError with the line of the problem,
    counted in the file whose line `first_line` the source starts on."""
    # libyaml composes nested nodes by C recursion and crashes the process on very deep
    # nesting; a document that could nest deeply goes to the pure-Python loader, which
    # stops at Python's recursion limit instead.
    deep = len(source) > _MAX_NESTING_MARKS and _nesting_marks(source) > _MAX_NESTING_MARKS
    loader = PurePythonLoader if deep else YamlLoader
    try:
        data = yaml.load(source, Loader=loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + first_line}" if mark is not None else ""
        problem = error.problem or "syntax error"
        if mark is not None and source[mark.index : mark.index + 1] == "\t":
            problem += " (a tab: YAML indents with spaces only)"
        if isinstance(error, DuplicateKeyError) and error.context_mark is not None:
            problem += f" (first at line {error.context_mark.line + first_line})"
        raise SeedError(f"invalid YAML{where}: {problem}") from None
    except yaml.reader.ReaderError as error:
        # Its position counts characters or bytes depending on the loader: the refused
        # character's first occurrence is where it was refused either way.
        code = error.character if isinstance(error.character, int) else 0
        found = source.find(chr(code)) if code else -1
        where = f" at line {source.count(chr(10), 0, found) + first_line}" if found >= 0 else ""
        raise SeedError(f"invalid YAML{where}: {error.reason} (U+{code:04X})") from None
    except yaml.YAMLError as error:
        raise SeedError(f"invalid YAML: {one_line(error)}") from None
    except RecursionError:
        raise SeedError("YAML is nested too deeply") from None
    except Exception as error:  # anything else the loader lets out is still this file's
        raise SeedError(f"invalid YAML: {type(error).__name__}: {one_line(error)}") from None
    if data is None:
        raise SeedError("empty document")
    if not isinstance(data, dict):
        raise SeedError(f"YAML is a {kind_of_value(data)}, not a mapping of fields")
    return data


def _nesting_marks(source: str) -> int:
    """An upper bound on how deeply a YAML text can nest, counted at C speed."""
    return sum(source.count(mark) for mark in ("[", "{", "- ", "? "))
