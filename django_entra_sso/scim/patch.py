"""SCIM PATCH (RFC 7644, 3.5.2) applied to a resource's JSON, with the IdPs' dialects.

The resource is turned into its SCIM JSON, the operations are applied to that
JSON here, and the result is saved as a PUT would be: one set of rules for
what a resource may hold. Accepted beside the RFC, because the IdPs send them:
Entra ID's capitalised ``op`` (``"Replace"``), values without ``path`` whose
keys are paths (``{"name.givenName": "A"}``), booleans as strings
(``"False"``, handled where the value is read) and ``remove`` of ``members`` with
the members to remove in ``value``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .errors import SCIMError, bad_request
from .filters import Path, matches, parse_path
from .resources import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA

_CORE_SCHEMAS = frozenset({USER_SCHEMA.lower(), GROUP_SCHEMA.lower()})

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MAX_OPERATIONS = 1000
#: What a client may never write.
READ_ONLY = frozenset({"id", "meta"})
#: A path may name an extension whole: its object, not an attribute "User" of "urn:…:2.0".
EXTENSIONS = frozenset({ENTERPRISE_SCHEMA.lower()})


def _key(doc: Mapping[str, Any], name: str) -> str | None:
    for key in doc:
        if key.lower() == name:
            return key
    return None


def _set(doc: dict[str, Any], name: str, value: Any) -> None:
    key = _key(doc, name.lower())
    if key is not None and key != name:
        del doc[key]
    doc[key or name] = value


def _get(doc: Mapping[str, Any], name: str) -> Any:
    key = _key(doc, name)
    return doc[key] if key is not None else None


def _same_item(a: Any, b: Any) -> bool:
    if isinstance(a, Mapping) and isinstance(b, Mapping) and "value" in {k.lower() for k in a}:
        return bool(str(_get(a, "value")).lower() == str(_get(b, "value")).lower())
    return bool(a == b)


def _identity(item: Any) -> Any:
    """What ``_same_item`` compares, as a hashable key: a member's ``value``, else the item."""
    if isinstance(item, Mapping) and "value" in {k.lower() for k in item}:
        return ("value", str(_get(item, "value")).lower())
    try:
        hash(item)
    except TypeError:
        return ("json", repr(item))
    return ("item", item)


def apply_patch(
    resource: dict[str, Any], body: Any, multi_valued: frozenset[str]
) -> dict[str, Any]:
    """The resource's JSON after the PatchOp ``body``; raises ``SCIMError`` on bad input."""
    if not isinstance(body, Mapping):
        raise bad_request("The body must be a PatchOp object.", "invalidSyntax")
    schemas = _get(body, "schemas")
    if not isinstance(schemas, list) or PATCH_SCHEMA not in schemas:
        raise bad_request(f"schemas must be [{PATCH_SCHEMA!r}].", "invalidSyntax")
    operations = _get(body, "operations")
    if not isinstance(operations, list) or not operations:
        raise bad_request("Operations must be a non-empty list.", "invalidSyntax")
    if len(operations) > MAX_OPERATIONS:
        raise SCIMError(413, f"At most {MAX_OPERATIONS} operations per request.")
    doc = copy.deepcopy(resource)
    for operation in operations:
        if not isinstance(operation, Mapping):
            raise bad_request("Each operation must be an object.", "invalidSyntax")
        op = _get(operation, "op")
        if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
            raise bad_request(f"Unknown op {op!r}.", "invalidSyntax")
        path = _get(operation, "path")
        value = _get(operation, "value")
        if path is not None and not isinstance(path, str):
            raise bad_request("path must be a string.", "invalidPath")
        _apply(doc, op.lower(), path or None, value, multi_valued)
    return doc


def _apply(
    doc: dict[str, Any], op: str, path: str | None, value: Any, multi_valued: frozenset[str]
) -> None:
    if path is None:
        if op == "remove":
            raise bad_request("remove needs a path.", "noTarget")
        if not isinstance(value, Mapping):
            raise bad_request("Without a path, value must be an object.", "invalidValue")
        for name, item in value.items():
            if isinstance(item, Mapping) and name.lower() in _CORE_SCHEMAS:
                # RFC 7644 §3.5.2: the core schema's URN names the resource itself
                # ({"urn:…:core:2.0:User": {"active": false}} is a deactivation).
                _apply(doc, op, None, item, multi_valued)
                continue
            # Entra ID: {"name.givenName": "A"}, or an extension schema's attributes.
            if isinstance(item, Mapping) and name.lower().startswith("urn:"):
                ext = _get(doc, name.lower())
                if not isinstance(ext, dict):
                    ext = {}
                    _set(doc, name, ext)
                ext.update(item)
                continue
            _apply_path(doc, op, parse_path(name), item, multi_valued)
        return
    _apply_path(doc, op, parse_path(path), value, multi_valued)


def _apply_path(
    doc: dict[str, Any], op: str, path: Path, value: Any, multi_valued: frozenset[str]
) -> None:
    if path.attr.lower() in READ_ONLY:
        raise bad_request(f"{path.attr} cannot be changed.", "mutability")
    target = doc
    attr = path.attr
    if attr.startswith("urn:") and attr.lower() not in EXTENSIONS:
        # An extension's attribute: "urn:…:enterprise:2.0:User:department".
        urn, _, attr = attr.rpartition(":")
        ext = _get(doc, urn.lower())
        if not isinstance(ext, dict):
            if op == "remove":
                return
            ext = {}
            _set(doc, urn, ext)
        target = ext
    current = _get(target, attr.lower())

    if path.filter is not None:
        items = current if isinstance(current, list) else []
        chosen = [item for item in items if matches(path.filter, item)]
        if op == "remove":
            kept = [item for item in items if item not in chosen]
            if path.sub is not None:
                for item in chosen:
                    key = _key(item, path.sub.lower())
                    if key is not None:
                        del item[key]
                kept = items
            _set(target, attr, kept)
            return
        if not chosen:
            # Entra ID replaces emails[type eq "work"].value on users that have none.
            seed = _seed(path)
            if seed is None:
                raise bad_request("No value matches the path's filter.", "noTarget")
            items = [*items, seed]
            chosen = [seed]
        for item in chosen:
            if path.sub is not None:
                _set(item, path.sub, value)
            elif isinstance(value, Mapping):
                item.update(value)
            else:
                raise bad_request("The value must be an object.", "invalidValue")
        _set(target, attr, items)
        return

    if path.sub is not None:
        parent = current if isinstance(current, dict) else {}
        if op == "remove":
            key = _key(parent, path.sub.lower())
            if key is not None:
                del parent[key]
        else:
            _set(parent, path.sub, value)
        _set(target, attr, parent)
        return

    if op == "remove":
        if attr.lower() in multi_valued and value is not None and isinstance(current, list):
            # Entra ID: {"op": "Remove", "path": "members", "value": [{"value": id}]}.
            gone = value if isinstance(value, list) else [value]
            # A set of keys, not pairwise comparisons: a group of thousands stays linear.
            removed = {_identity(g) for g in gone}
            _set(target, attr, [i for i in current if _identity(i) not in removed])
            return
        key = _key(target, attr.lower())
        if key is not None:
            del target[key]
        return
    if attr.lower() in multi_valued:
        values = value if isinstance(value, list) else [value]
        if op == "add" and isinstance(current, list):
            merged = list(current)
            seen = {_identity(old) for old in merged}
            for item in values:
                if _identity(item) not in seen:
                    seen.add(_identity(item))
                    merged.append(item)
            values = merged
        _set(target, attr, values)
        return
    if isinstance(value, Mapping) and isinstance(current, dict):
        # A complex attribute: the sub-attributes given replace, the others stay.
        current.update(value)
        return
    _set(target, attr, value)


def _seed(path: Path) -> dict[str, Any] | None:
    """The item ``emails[type eq "work"]`` describes, to add when none exists yet."""
    from .filters import Compare

    node = path.filter
    if isinstance(node, Compare) and node.op == "eq" and path.sub is not None:
        return {node.attr: node.value}
    return None
