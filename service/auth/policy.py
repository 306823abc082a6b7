"""Who may read what after company sign-in: the policy file (``INHOUSE_POLICY``, YAML).

    everyone:                    # optional: every signed-in user
      collections: {handbook: [read]}
    groups:                      # group names as the provider sends them (groups claim)
      finance:
        collections: {finance: [read, upload]}
      auditors:
        scopes: [reasoning:read]
      it-admins:
        scopes: [admin]          # every collection, key and session management
    users:                       # by subject or e-mail
      alice@example.com:
        collections: {legal: [read]}

Grants add up. Every signed-in user may ask (scope ``query``) but only in the collections
granted; ``upload`` implies ``read`` and gives the ``ingest`` scope on that collection
only. The file is validated at start; each error names the file and line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from service.caller import (
    ALL_COLLECTIONS,
    SCOPE_ADMIN,
    SCOPE_INGEST,
    SCOPE_METRICS,
    SCOPE_QUERY,
    SCOPE_REASONING,
    Caller,
)

RIGHTS = ("read", "upload")
POLICY_SCOPES = (SCOPE_REASONING, SCOPE_METRICS, SCOPE_ADMIN)
SECTIONS = ("everyone", "groups", "users")


class PolicyError(ValueError):
    """The policy file is wrong; the message names the file and line."""


@dataclass(slots=True)
class Grant:
    """What one policy entry (or the sum of several) allows."""

    read: set[str] = field(default_factory=set)
    upload: set[str] = field(default_factory=set)
    scopes: set[str] = field(default_factory=set)

    def add(self, other: Grant) -> None:
        self.read |= other.read
        self.upload |= other.upload
        self.scopes |= other.scopes


@dataclass(frozen=True, slots=True)
class Policy:
    """The parsed policy; ``caller`` turns an identity into the ACL's ``Caller``."""

    everyone: Grant = field(default_factory=Grant)
    groups: dict[str, Grant] = field(default_factory=dict)
    users: dict[str, Grant] = field(default_factory=dict)

    def grant(self, subject: str, email: str | None, groups: Iterable[str]) -> Grant:
        total = Grant()
        total.add(self.everyone)
        for group in groups:
            if group in self.groups:
                total.add(self.groups[group])
        for who in (subject, email):
            if who and who in self.users:
                total.add(self.users[who])
        return total

    def caller(
        self, caller_id: str, name: str, subject: str, email: str | None, groups: Iterable[str]
    ) -> Caller:
        """The session's ``Caller`` (the same type the key ACL uses)."""
        grant = self.grant(subject, email, groups)
        scopes = {SCOPE_QUERY, *grant.scopes}
        if grant.upload:
            scopes.add(SCOPE_INGEST)
        read = grant.read | grant.upload
        if SCOPE_ADMIN in scopes:
            read = {ALL_COLLECTIONS}
        return Caller(
            id=caller_id,
            name=name,
            scopes=frozenset(scopes),
            collections=frozenset(read),
            uploads=frozenset(grant.upload),
            kind="session",
        )


EMPTY = Policy()


def load_policy(path: Path | None) -> Policy:
    """Read and validate the policy file (``EMPTY`` when none is configured)."""
    if path is None:
        return EMPTY
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc.strerror}") from None
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str = "policy") -> Policy:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise PolicyError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if root is None:
        return EMPTY
    parser = _Parser(source)
    top = parser.mapping(root, "the policy")
    policy = Policy()
    for key, (key_node, value) in top.items():
        if key not in SECTIONS:
            parser.fail(key_node, f"unknown section {key!r}; expected {', '.join(SECTIONS)}")
        if key == "everyone":
            policy.everyone.add(parser.grant(value, "everyone"))
            continue
        entries = policy.groups if key == "groups" else policy.users
        for name, (_, entry) in parser.mapping(value, key).items():
            entries[name] = parser.grant(entry, f"{key}.{name}")
    return policy


class _Parser:
    """Walks the YAML node tree, so every complaint can carry its line."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: yaml.Node, message: str) -> NoReturn:
        raise PolicyError(f"{self.source}:{node.start_mark.line + 1}: {message}")

    def mapping(self, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping (name: ...)")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            name = self.scalar(key, f"a key in {what}")
            if name in out:
                self.fail(key, f"{name!r} appears twice in {what}")
            out[name] = (key, value)
        return out

    def scalar(self, node: yaml.Node, what: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
            self.fail(node, f"{what} must be a non-empty string")
        return str(node.value).strip()

    def strings(self, node: yaml.Node, what: str) -> list[tuple[yaml.Node, str]]:
        if isinstance(node, yaml.ScalarNode):
            return [(node, self.scalar(node, what))]
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"{what} must be a list")
        return [(item, self.scalar(item, what)) for item in node.value]

    def grant(self, node: yaml.Node, what: str) -> Grant:
        from ingest.settings import validate_collection_name

        grant = Grant()
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            return grant  # an empty entry grants nothing
        for key, (key_node, value) in self.mapping(node, what).items():
            if key == "scopes":
                for item, scope in self.strings(value, f"{what}.scopes"):
                    if scope not in POLICY_SCOPES:
                        self.fail(item, f"unknown scope {scope!r}; use {', '.join(POLICY_SCOPES)}")
                    grant.scopes.add(scope)
            elif key == "collections":
                for coll, (coll_node, rights) in self.mapping(value, f"{what}.collections").items():
                    if coll != ALL_COLLECTIONS:
                        try:
                            validate_collection_name(coll)
                        except ValueError as exc:
                            self.fail(coll_node, str(exc))
                    for item, right in self.strings(rights, f"{what}.collections.{coll}"):
                        if right not in RIGHTS:
                            self.fail(item, f"unknown right {right!r}; use {', '.join(RIGHTS)}")
                        (grant.read if right == "read" else grant.upload).add(coll)
            else:
                self.fail(key_node, f"unknown field {key!r} in {what}; use collections, scopes")
        return grant


def describe(grant: Grant) -> dict[str, Any]:
    """A grant as plain data (for logs and tests)."""
    return {
        "read": sorted(grant.read),
        "upload": sorted(grant.upload),
        "scopes": sorted(grant.scopes),
    }
