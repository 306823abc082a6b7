"""Read the JSDoc typedefs of web/js/types.js and compare them with JSON Schema and JSON.

Only the subset of JSDoc the file uses: ``@typedef {Object} Name``, ``@property {T} name``
(``[name]`` when the field may be absent), and the tags ``@schema``, ``@schemaPart``,
``@stream`` and ``@event``. Types: ``string``, ``number``, ``boolean``, ``*``, ``T[]``,
``Object<string, T>``, string literals joined by ``|``, a typedef name, and ``?T`` or
``T|null`` for null.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = re.compile(r"/\*\*(.*?)\*/", re.S)
TYPEDEF = re.compile(r"@typedef\s+\{Object\}\s+(\w+)")
PROPERTY = re.compile(r"@property\s+\{([^}]+)\}\s+(\[\w+\]|\w+)")
TAG = re.compile(r"@(schema|schemaPart|stream|event)\s+(\w+)")
LITERAL = re.compile(r'^"([^"]*)"$')


@dataclass(frozen=True)
class JsType:
    """A property's type: its alternatives (null taken out) and whether null is one."""

    alts: tuple[str, ...]
    nullable: bool

    @classmethod
    def parse(cls, text: str) -> JsType:
        text = text.strip()
        nullable = text.startswith("?")
        text = text.lstrip("?").strip()
        if text.startswith("(") and text.endswith(")"):
            text = text[1:-1]
        alts = tuple(a.strip() for a in text.split("|"))
        nullable = nullable or "null" in alts
        return cls(tuple(a for a in alts if a != "null"), nullable)

    def literals(self) -> set[str] | None:
        found = [LITERAL.match(a) for a in self.alts]
        return {m.group(1) for m in found if m} if all(found) else None


@dataclass(frozen=True)
class Prop:
    name: str
    type: JsType
    optional: bool


@dataclass
class Typedef:
    name: str
    props: dict[str, Prop] = field(default_factory=dict)
    schema: str | None = None  # the OpenAPI component it mirrors (all fields)
    schema_part: str | None = None  # ... or some of whose fields it holds
    stream: str | None = None  # a stream frame with no OpenAPI schema
    events: list[str] = field(default_factory=list)

    @property
    def component(self) -> str | None:
        return self.schema or self.schema_part


def parse_typedefs(path: Path) -> dict[str, Typedef]:
    found: dict[str, Typedef] = {}
    for block in BLOCK.findall(path.read_text()):
        head = TYPEDEF.search(block)
        if not head:
            continue
        typedef = Typedef(head.group(1))
        for kind, value in TAG.findall(block):
            if kind == "event":
                typedef.events.append(value)
            else:
                setattr(typedef, {"schemaPart": "schema_part"}.get(kind, kind), value)
        for raw_type, raw_name in PROPERTY.findall(block):
            name = raw_name.strip("[]")
            typedef.props[name] = Prop(name, JsType.parse(raw_type), raw_name.startswith("["))
        found[typedef.name] = typedef
    return found


class SchemaCheck:
    """Compare typedefs with the ``components.schemas`` of an OpenAPI document."""

    def __init__(self, typedefs: dict[str, Typedef], components: dict[str, Any]) -> None:
        self.typedefs = typedefs
        self.components = components

    def problems(self, typedef: Typedef) -> list[str]:
        where = f"{typedef.name} ({typedef.component})"
        schema = self.components.get(typedef.component or "")
        if schema is None:
            return [f"{where}: no such schema in /openapi.json"]
        props: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        out = [f"{where}.{name}: not in the API" for name in typedef.props if name not in props]
        if typedef.schema:
            out += [f"{where}.{name}: missing from the typedef" for name in props
                    if name not in typedef.props]  # fmt: skip
        for name, prop in typedef.props.items():
            if name not in props:
                continue
            if prop.optional == (name in required):
                want = "required" if name in required else "optional ([name])"
                out.append(f"{where}.{name}: the API has it {want}")
            out += [f"{where}.{name}: {p}" for p in self.match(prop.type, props[name])]
        return out

    def match(self, js: JsType, schema: dict[str, Any]) -> list[str]:
        alts = [a for a in schema.get("anyOf", [schema])]
        nullable = any(a.get("type") == "null" for a in alts)
        alts = [a for a in alts if a.get("type") != "null"]
        out = []
        if js.nullable != nullable:
            out.append(f"the API says nullable={nullable}")
        literals = js.literals()
        if literals is not None:
            enum = set(alts[0].get("enum", [alts[0].get("const")])) if len(alts) == 1 else set()
            return out + ([] if enum == literals else [f"values {sorted(literals)} != {enum}"])
        if len(js.alts) != 1 or len(alts) != 1:
            return out + [f"union {js.alts} against {alts}"]
        return out + self.match_one(js.alts[0], alts[0])

    def match_one(self, alt: str, schema: dict[str, Any]) -> list[str]:
        kind = schema.get("type")
        if alt == "*":
            return []
        if alt in ("string", "boolean"):
            return [] if kind == alt else [f"{alt} but the API has {kind or schema}"]
        if alt == "number":
            return [] if kind in ("integer", "number") else [f"number but the API has {kind}"]
        if alt.endswith("[]"):
            if kind != "array":
                return [f"an array but the API has {kind}"]
            items = schema.get("prefixItems") or [schema.get("items", {})]
            return [p for item in items for p in self.match(JsType.parse(alt[:-2]), item)]
        mapping = re.fullmatch(r"Object<string,\s*(.+)>", alt)
        if mapping or alt == "Object":
            if kind != "object" or "$ref" in schema:
                return [f"a map but the API has {kind or schema}"]
            values = schema.get("additionalProperties", True)
            if mapping and isinstance(values, dict):
                return self.match(JsType.parse(mapping.group(1)), values)
            return []
        typedef = self.typedefs.get(alt)
        if typedef is None:
            return [f"unknown type {alt}"]
        ref = schema.get("$ref", "").rsplit("/", 1)[-1]
        if not ref or ref != typedef.component:
            return [f"{alt} mirrors {typedef.component} but the API has {ref or kind}"]
        return []


def value_problems(js: JsType, value: Any, typedefs: dict[str, Typedef]) -> list[str]:
    """Whether one JSON value seen on a stream fits the declared type."""
    if value is None:
        return [] if js.nullable else ["null"]
    literals = js.literals()
    if literals is not None:
        return [] if value in literals else [f"{value!r} not in {sorted(literals)}"]
    alt = js.alts[0]
    checks = {
        "*": lambda v: True,
        "string": lambda v: isinstance(v, str),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
    }
    if alt in checks:
        ok = checks[alt](value)
    elif alt.endswith("[]"):
        if not isinstance(value, list):
            return [f"{type(value).__name__}, not an array"]
        inner = JsType.parse(alt[:-2])
        return [p for v in value for p in value_problems(inner, v, typedefs)]
    else:
        ok = isinstance(value, dict) and (alt.startswith("Object") or alt in typedefs)
    return [] if ok else [f"{type(value).__name__}, not {alt}"]
