"""YAML spec files → ``Spec``, with every problem located at ``file:line:col``.

PyYAML's loaders silently let a duplicate key win, build Python objects from tags and
expand aliases without bound. So we only *compose* (a ``SafeLoader`` subclass builds the
node graph) and build plain data ourselves: only the YAML core tags, duplicate keys are
E202, foreign tags E204, more than ``MAX_NODES`` nodes after alias expansion E204, and the
position of every key and value is kept for later diagnostics (pydantic's, the compiler's).
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from cascadec.errors import Diagnostic, SpecError, caret_excerpt
from cascadec.limits import MAX_DEPTH, MAX_SPEC_BYTES, read_regular_file
from cascadec.spec.model import Spec

MAX_BYTES = MAX_SPEC_BYTES
MAX_NODES = 10_000
NodePath = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null")}
_MERGE = f"{_CORE}merge"


class SpecLoader(yaml.SafeLoader):
    """Composes nodes only; ``SpecDocument`` builds the data (see the module docstring)."""


@dataclass(frozen=True)
class SpecDocument:
    """A parsed YAML document: plain data plus the position of every key and value."""

    source: str
    text: str
    data: Any
    keys: dict[NodePath, tuple[int, int]]
    values: dict[NodePath, tuple[int, int, str | None]]

    def locate(self, path: NodePath, *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of ``path``'s key or value, else of its nearest ancestor."""
        for cut in range(len(path), -1, -1):
            sub = path[:cut]
            if key and sub in self.keys:
                return self.keys[sub]
            if sub in self.values:
                return self.values[sub][:2]
        return 1, 1

    def text_start(self, path: NodePath) -> tuple[int, int]:
        """Where a string value's text begins (inside quotes; the next line of a block scalar)."""
        if path not in self.values:
            return self.locate(path)
        line, column, style = self.values[path]
        if style in ('"', "'"):
            return line, column + 1
        if style in ("|", ">"):
            lines = self.text.splitlines()
            nxt = lines[line] if line < len(lines) else ""
            return line + 1, len(nxt) - len(nxt.lstrip()) + 1
        return line, column

    def diag(
        self, code: str, message: str, path: NodePath = (), *, key: bool = False, fix: str | None = None
    ):
        line, column = self.locate(path, key=key)
        return _diag(self.source, self.text, code, message, line, column, fix)


def _diag(source, text, code, message, line, column, fix=None) -> Diagnostic:
    return Diagnostic(code, message, line, column, source, caret_excerpt(text, line, column), fix)


# --- reading ------------------------------------------------------------------------------
def read_spec_text(path: str | Path) -> str:
    """The file's text. Unreadable: CascadecError E901 (I/O). Empty, binary, not UTF-8: SpecError E203."""
    source = str(path)
    data = read_regular_file(path, MAX_BYTES + 1, "spec")  # one byte over: E203 below, located
    if len(data) > MAX_BYTES:
        raise _fail(source, "", "E203", f"spec is {len(data)} bytes; specs are at most {MAX_BYTES}", 1, 1)
    if b"\x00" in data:
        line, column = _position(data, data.index(b"\x00"))
        raise _fail(source, "", "E203", "binary file (NUL byte), not a YAML spec", line, column)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _position(data, exc.start)
        raise _fail(
            source,
            "",
            "E203",
            f"not UTF-8 text (byte 0x{data[exc.start]:02x}); is it a binary file?",
            line,
            column,
        ) from None
    if not text.strip():
        raise _fail(
            source, text, "E203", "empty spec; a spec needs at least 'version: 1' and 'strategy:'", 1, 1
        )
    return text


def _position(data: bytes, offset: int) -> tuple[int, int]:
    head = data[:offset]
    return head.count(b"\n") + 1, offset - (head.rfind(b"\n") + 1) + 1


def _fail(source, text, code, message, line, column, fix=None) -> SpecError:
    d = _diag(source, text, code, message, line, column, fix)
    return SpecError(message, code=code, diagnostics=[d])


def parse_yaml(text: str, source: str = "<spec>") -> SpecDocument:
    """Compose and build one YAML document; SpecError with every E202/E203/E204 found."""
    loader = None
    try:
        loader = SpecLoader(text)
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise _fail(source, text, "E203", f"YAML syntax error: {problem}", line, column) from None
    except RecursionError:  # PyYAML composes recursively: nesting is bounded by the stack
        line, column = (loader.line + 1, loader.column + 1) if loader is not None else (1, 1)
        raise _fail(
            source, text, "E204", f"document nests deeper than {MAX_DEPTH} levels", line, column
        ) from None
    except yaml.YAMLError as exc:  # ReaderError: control characters
        position = getattr(exc, "position", 0) or 0
        line, column = _position(text.encode(), len(text[:position].encode()))
        raise _fail(
            source, text, "E203", f"not a YAML text: {getattr(exc, 'reason', exc)}", line, column
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == f"{_CORE}null"):
        raise _fail(
            source, text, "E203", "empty spec; a spec needs at least 'version: 1' and 'strategy:'", 1, 1
        )
    builder = _Builder(source, text, loader)
    data = builder.build(node, (), 0)
    if builder.diagnostics:
        first = builder.diagnostics[0]
        raise SpecError(first.message, code=first.code, diagnostics=builder.diagnostics)
    if not isinstance(data, dict):
        raise _fail(
            source,
            text,
            "E203",
            f"a spec is a mapping (version:, strategy:, ...), not a {_kind(data)}",
            node.start_mark.line + 1,
            node.start_mark.column + 1,
        )
    return SpecDocument(source, text, data, builder.keys, builder.values)


def _kind(value: Any) -> str:
    return {list: "list", str: "string", type(None): "null"}.get(type(value), type(value).__name__)


class _Abort(Exception):
    pass


class _Builder:
    """Node graph → plain data, recording positions and refusing what a spec must not contain."""

    def __init__(self, source: str, text: str, loader: SpecLoader):
        self.source, self.text, self.loader = source, text, loader
        self.keys: dict[NodePath, tuple[int, int]] = {}
        self.values: dict[NodePath, tuple[int, int, str | None]] = {}
        self.diagnostics: list[Diagnostic] = []
        self.count = 0

    def error(self, code: str, message: str, node: yaml.Node, fix: str | None = None) -> None:
        m = node.start_mark
        self.diagnostics.append(_diag(self.source, self.text, code, message, m.line + 1, m.column + 1, fix))

    def build(self, node: yaml.Node, path: NodePath, depth: int) -> Any:
        try:
            return self._build(node, path, depth)
        except _Abort:
            return None

    def _build(self, node: yaml.Node, path: NodePath, depth: int) -> Any:
        self.count += 1
        if self.count > MAX_NODES or depth > MAX_DEPTH:
            what = (
                f"has more than {MAX_NODES} nodes"
                if self.count > MAX_NODES
                else f"nests deeper than {MAX_DEPTH}"
            )
            self.error("E204", f"document {what} (an alias explosion or a recursive anchor?)", node)
            raise _Abort
        self.values.setdefault(
            path, (node.start_mark.line + 1, node.start_mark.column + 1, getattr(node, "style", None))
        )
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != f"{_CORE}seq":
                return self._bad_tag(node)
            return [self._build(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
        if node.tag != f"{_CORE}map":
            return self._bad_tag(node)
        return self._mapping(node, path, depth)

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag == f"{_CORE}timestamp":
            return node.value  # a date is just text to a spec
        if node.tag not in _SCALAR_TAGS:
            return self._bad_tag(node)
        return self.loader.construct_object(node)

    def _bad_tag(self, node: yaml.Node) -> None:
        tag = node.tag.replace(_CORE, "!!")
        self.error(
            "E204", f"tag {tag} is not allowed in a spec (only plain YAML values)", node, fix="remove the tag"
        )
        return None

    def _mapping(self, node: yaml.MappingNode, path: NodePath, depth: int) -> dict:
        out: dict[str, Any] = {}
        merged: list[dict] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                source = self._build(value_node, (*path, "<<"), depth + 1)
                merged.extend(
                    s for s in (source if isinstance(source, list) else [source]) if isinstance(s, dict)
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.error("E203", "mapping keys must be plain strings", key_node)
                continue
            key = key_node.value
            here = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in out:
                first = self.keys[(*path, key)][0]
                self.error(
                    "E202",
                    f"duplicate key {key!r} (first defined on line {first})",
                    key_node,
                    fix="keep one of them",
                )
                continue
            self.keys[(*path, key)] = here
            out[key] = self._build(value_node, (*path, key), depth + 1)
        for source in merged:
            for key, value in source.items():
                out.setdefault(key, value)
        return out


# --- validation ---------------------------------------------------------------------------
def validate_spec(doc: SpecDocument) -> Spec:
    """Pydantic validation with located E200 / E201 (did you mean) / E205 diagnostics."""
    try:
        return Spec.model_validate(doc.data)
    except ValidationError as exc:
        diags = validation_diagnostics(doc, exc)
    diags.sort(key=lambda d: (d.line, d.column))
    raise SpecError(diags[0].message, code=diags[0].code, diagnostics=diags)


def load_spec(path: str | Path) -> tuple[Spec, SpecDocument]:
    """Read, parse and validate a spec file; SpecError (E2xx) or CascadecError (E901, I/O)."""
    doc = parse_yaml(read_spec_text(path), str(path))
    return validate_spec(doc), doc


def validation_diagnostics(doc: SpecDocument, exc: ValidationError) -> list[Diagnostic]:
    errors = exc.errors()
    suggested: set[NodePath] = set()
    out = []
    for err in (e for e in errors if e["type"] == "extra_forbidden"):
        path = data_path(doc.data, err["loc"])
        known = _field_names(Spec, path[:-1])
        near = difflib.get_close_matches(str(path[-1]), known, n=1, cutoff=0.6)
        suggested.update((*path[:-1], n) for n in near)
        fix = f"did you mean {near[0]!r}?" if near else f"known keys: {', '.join(known)}"
        out.append(
            doc.diag(
                "E201",
                f"unknown key {path[-1]!r} in {_dotted(path[:-1]) or 'the spec'}",
                path,
                key=True,
                fix=fix,
            )
        )
    for err in (e for e in errors if e["type"] != "extra_forbidden"):
        path = data_path(doc.data, err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            name = str(err["loc"][-1])
            if (*path, name) in suggested:
                continue
            fix = "add 'version: 1'" if name == "version" and not path else None
            where = _dotted(path) or "the spec"
            out.append(doc.diag("E200", f"missing required key {name!r} in {where}", path, key=True, fix=fix))
        elif path == ("version",):
            out.append(
                doc.diag(
                    "E205", f"unsupported spec version {err['input']!r}; this cascadec reads version 1", path
                )
            )
        else:
            got = err.get("input")
            shown = f", got {got!r}" if isinstance(got, str | int | float | bool) or got is None else ""
            container = isinstance(_value_at(doc.data, path), dict | list)  # point at its key, not its body
            out.append(doc.diag("E200", f"{_dotted(path) or 'spec'}: {msg}{shown}", path, key=container))
    return out


def _dotted(path: NodePath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _value_at(data: Any, path: NodePath) -> Any:
    for part in path:
        data = data[part]
    return data


def data_path(data: Any, loc: tuple) -> NodePath:
    """Pydantic's error location → a path into the data (drops union-member and validator names)."""
    path: list[str | int] = []
    for part in loc:
        if isinstance(data, dict) and isinstance(part, str) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            continue
        path.append(part)
    return tuple(path)


def _field_names(model: type[BaseModel], path: NodePath) -> list[str]:
    """The keys allowed at ``path`` of a spec (for "did you mean")."""
    models = [model]
    for part in path:
        if isinstance(part, str):
            models = [
                m
                for cls in models
                if part in cls.model_fields
                for m in _models_in(cls.model_fields[part].annotation)
            ]
    return sorted({name for cls in models for name in cls.model_fields})


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []
