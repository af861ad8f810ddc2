"""SCIM's filter language (RFC 7644, 3.4.2.2) and PATCH paths (3.5.2): parsed, then used.

A small recursive-descent parser: ``and`` binds tighter than ``or``, ``not (…)``
and brackets group, ``attr[filter]`` filters a multi-valued attribute, and an
attribute path may carry its schema URN. The tree is turned into a ``Q`` by
the resource's own map of attributes (an attribute not in it is an
``invalidFilter``, never silently dropped), or evaluated on a JSON value for
PATCH's value filters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Union

from django.db.models import Q
from django.utils.dateparse import parse_datetime

from .errors import SCIMError

OPERATORS = frozenset({"eq", "ne", "co", "sw", "ew", "pr", "gt", "ge", "lt", "le"})
MAX_FILTER_LENGTH = 2000

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<punct>[()\[\]])
      | (?P<word>[A-Za-z0-9_:.$+\-]+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Compare:
    attr: str  # lower case, "emails.value"; URN prefixes removed
    op: str
    value: Any = None


@dataclass(frozen=True)
class ValuePath:
    attr: str
    filter: Node
    sub: str | None = None  # "emails[type eq "work"].value eq …": "value"
    op: str | None = None
    value: Any = None


@dataclass(frozen=True)
class Logical:
    op: str  # "and" | "or"
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    inner: Node


Node = Union[Compare, ValuePath, Logical, Not]  # noqa: UP007 - Python 3.10 dataclass annotation


def invalid_filter(detail: str) -> SCIMError:
    return SCIMError(400, detail, "invalidFilter")


def _tokens(text: str, error: Callable[[str], SCIMError]) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise error(f"Unexpected character at {position}: {text[position : position + 10]!r}.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def strip_urn(path: str) -> str:
    """``urn:…:core:2.0:User:name.givenName`` → ``name.givenName`` (extensions keep theirs)."""
    if not path.lower().startswith("urn:"):
        return path
    base, _, attr = path.rpartition(":")
    if base.lower() in CORE_SCHEMAS:
        return attr
    return path


CORE_SCHEMAS = {
    "urn:ietf:params:scim:schemas:core:2.0:user",
    "urn:ietf:params:scim:schemas:core:2.0:group",
}


class _Parser:
    def __init__(self, text: str, error: Callable[[str], SCIMError]) -> None:
        if len(text) > MAX_FILTER_LENGTH:
            raise error("The filter is too long.")
        self.error = error
        self.tokens = _tokens(text, error)
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise self.error("The filter ends too early.")
        self.position += 1
        return token

    def expect(self, text: str) -> None:
        _kind, value = self.take()
        if value != text:
            raise self.error(f"Expected {text!r}, found {value!r}.")

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].lower() in words:
            self.position += 1
            return token[1].lower()
        return None

    def done(self) -> None:
        if self.peek() is not None:
            raise self.error(f"Unexpected {self.peek()[1]!r}.")  # type: ignore[index]

    # filter := and_expr ("or" and_expr)*
    def filter(self) -> Node:
        node = self.and_expr()
        while self.keyword("or"):
            node = Logical("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.unary()
        while self.keyword("and"):
            node = Logical("and", node, self.unary())
        return node

    def unary(self) -> Node:
        if self.keyword("not"):
            self.expect("(")
            inner = self.filter()
            self.expect(")")
            return Not(inner)
        token = self.peek()
        if token is not None and token[1] == "(":
            self.take()
            inner = self.filter()
            self.expect(")")
            return inner
        return self.attr_expr()

    def attr_path(self, keep_case: bool = False) -> str:
        kind, word = self.take()
        if kind != "word" or word.lower() in OPERATORS | {"and", "or", "not"}:
            raise self.error(f"Expected an attribute, found {word!r}.")
        word = strip_urn(word)
        return word if keep_case else word.lower()

    def attr_expr(self) -> Node:
        attr = self.attr_path()
        token = self.peek()
        if token is not None and token[1] == "[":
            self.take()
            inner = self.filter()
            self.expect("]")
            sub = None
            nxt = self.peek()
            if nxt is not None and nxt[0] == "word" and nxt[1].startswith("."):
                sub = self.take()[1][1:].lower()
            if sub is None:
                return ValuePath(attr, inner)
            op, value = self.comparison()
            return ValuePath(attr, inner, sub, op, value)
        op, value = self.comparison()
        return Compare(attr, op, value)

    def comparison(self) -> tuple[str, Any]:
        op = self.keyword(*OPERATORS)
        if op is None:
            token = self.peek()
            raise self.error(f"Expected an operator, found {token[1] if token else 'the end'!r}.")
        if op == "pr":
            return op, None
        kind, raw = self.take()
        if kind == "string":
            try:
                value = json.loads(raw)
            except ValueError as exc:
                raise self.error("A string in the filter is malformed.") from exc
            if "\x00" in value:
                raise self.error("A string in the filter holds a NUL character.")
            return op, value
        if kind == "word":
            lowered = raw.lower()
            if lowered in ("true", "false", "null"):
                return op, {"true": True, "false": False, "null": None}[lowered]
            try:
                return op, json.loads(raw, parse_constant=_not_a_number)
            except ValueError:
                pass
        raise self.error(f"Expected a value, found {raw!r}.")


def parse_filter(text: str) -> Node:
    parser = _Parser(text, invalid_filter)
    node = parser.filter()
    parser.done()
    return node


@dataclass(frozen=True)
class Path:
    """A PATCH path: ``attr``, optionally ``[filter]`` and ``.sub``, in the client's case."""

    attr: str
    filter: Node | None = None
    sub: str | None = None


def parse_path(text: str) -> Path:
    def invalid_path(detail: str) -> SCIMError:
        return SCIMError(400, f"Bad path: {detail}", "invalidPath")

    parser = _Parser(text, invalid_path)
    attr = parser.attr_path(keep_case=True)
    node: Node | None = None
    sub: str | None = None
    token = parser.peek()
    if token is not None and token[1] == "[":
        parser.take()
        node = parser.filter()
        parser.expect("]")
        nxt = parser.peek()
        if nxt is not None and nxt[0] == "word" and nxt[1].startswith("."):
            sub = parser.take()[1][1:]
    parser.done()
    if node is None and "." in attr and not attr.startswith("urn:"):
        attr, _, sub = attr.partition(".")
    return Path(attr, node, sub)


# -- filters as queries ----------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """How a SCIM attribute is queried: a model lookup, case-exact or not, how values convert."""

    lookup: str
    case_exact: bool = False
    convert: Callable[[Any], Any] | None = None


def as_datetime(value: Any) -> Any:
    """A SCIM dateTime (RFC 3339 text); ``ValueError`` for anything else (``gt 5``, ``true``)."""
    if not isinstance(value, str):
        raise ValueError("a dateTime is a string")
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError("not an RFC 3339 dateTime")
    return parsed


#: ``{multi-valued attribute: {sub-attribute: Field | callable(op, value) -> Q}}``.
SubFields = Mapping[str, Mapping[str, Any]]

_STRING_LOOKUPS = {"eq": "exact", "co": "contains", "sw": "startswith", "ew": "endswith"}


def _compare(field: Any, op: str, value: Any, name: str) -> Q:
    if callable(field) and not isinstance(field, Field):
        result: Q = field(op, value)
        return result
    if op == "pr":
        if field.convert is not None:  # a UUID, boolean or date: "" is no value of it
            return Q(**{f"{field.lookup}__isnull": False})
        return ~Q(**{field.lookup: ""}) & Q(**{f"{field.lookup}__isnull": False})
    if field.convert is not None:
        try:
            value = field.convert(value)
        except (TypeError, ValueError) as exc:
            raise invalid_filter(f"{name}: {value!r} is not a valid value.") from exc
    if op in ("eq", "ne") and not isinstance(value, str):
        query = Q(**{field.lookup: value})
    elif op in _STRING_LOOKUPS or op == "ne":
        if not isinstance(value, str):
            raise invalid_filter(f"{name} {op}: compare with a string.")
        lookup = _STRING_LOOKUPS.get(op, "exact")
        if not field.case_exact:
            lookup = "i" + lookup
        query = Q(**{f"{field.lookup}__{lookup}": value})
    else:
        query = Q(**{f"{field.lookup}__{op.replace('ge', 'gte').replace('le', 'lte')}": value})
    return ~query if op == "ne" else query


def to_query(node: Node, fields: Mapping[str, Any], sub_fields: SubFields) -> Q:
    """``node`` as a ``Q`` over the resource's model; unknown attributes are refused."""
    if isinstance(node, Logical):
        left = to_query(node.left, fields, sub_fields)
        right = to_query(node.right, fields, sub_fields)
        return left & right if node.op == "and" else left | right
    if isinstance(node, Not):
        return ~to_query(node.inner, fields, sub_fields)
    if isinstance(node, ValuePath):
        subs = sub_fields.get(node.attr)
        if subs is None:
            raise invalid_filter(f"Cannot filter on {node.attr}[…].")
        query = to_query(node.filter, subs, {})
        if node.sub is not None:
            query &= to_query(Compare(node.sub, node.op or "pr", node.value), subs, {})
        return query
    name = node.attr
    if name in fields:
        return _compare(fields[name], node.op, node.value, name)
    attr, _, sub = name.partition(".")
    if attr in sub_fields and (sub or "value") in sub_fields[attr]:
        return _compare(sub_fields[attr][sub or "value"], node.op, node.value, name)
    raise invalid_filter(f"Cannot filter on {name}.")


# -- filters on JSON values (PATCH value filters) ---------------------------------------------


def lookup(item: Mapping[str, Any], name: str) -> Any:
    """``item[name]`` with SCIM's case-insensitive attribute names."""
    for key, value in item.items():
        if key.lower() == name:
            return value
    return None


def matches(node: Node, item: Any) -> bool:
    """Does a JSON value (a multi-valued attribute's item) pass ``node``?"""
    if isinstance(node, Logical):
        if node.op == "and":
            return matches(node.left, item) and matches(node.right, item)
        return matches(node.left, item) or matches(node.right, item)
    if isinstance(node, Not):
        return not matches(node.inner, item)
    if isinstance(node, ValuePath) or not isinstance(item, Mapping):
        return False
    actual = lookup(item, node.attr)
    if node.op == "pr":
        return actual not in (None, "", [], {})
    expected = node.value
    if isinstance(actual, str) and isinstance(expected, bool):
        actual = actual.lower() == "true"
    if isinstance(actual, str) and isinstance(expected, str):
        actual, expected = actual.lower(), expected.lower()
        return {
            "eq": actual == expected,
            "ne": actual != expected,
            "co": expected in actual,
            "sw": actual.startswith(expected),
            "ew": actual.endswith(expected),
        }.get(node.op, False)
    if node.op == "eq":
        return bool(actual == expected)
    if node.op == "ne":
        return bool(actual != expected)
    return False


def _not_a_number(name: str) -> Any:
    """``NaN`` and ``Infinity`` are no SCIM values: a word, and refused as one."""
    raise ValueError(name)
