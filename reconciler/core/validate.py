"""Raw documents -> validated models, with pydantic errors turned into positioned diagnostics."""

from __future__ import annotations

import copy
import datetime
import difflib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from reconciler.core.credentials import NOT_SHOWN, looks_like_secret
from reconciler.core.models import API_VERSION, KINDS, Account, ConversionEvent
from reconciler.core.source import Located, Path, RawDocument
from reconciler.diagnostics import Diagnostics

# Rules our custom pydantic error types stand for.
CODE_RULES = {"E104": None, "E105": None}


@dataclass
class ManifestSet:
    """The desired state: every valid account and event, in load order."""

    accounts: list[Located[Account]] = field(default_factory=list)
    events: list[Located[ConversionEvent]] = field(default_factory=list)
    invalid_accounts: set[str] = field(default_factory=set)
    """Names of Account documents that failed validation (already reported): references to
    them are not reported again as undeclared."""
    documents: list[RawDocument] = field(default_factory=list, repr=False, compare=False)
    """The parsed documents the set was built from, alive as long as it is: a command that
    keeps the set to the end (``cli/lifetime``) then never frees them one by one either,
    which cost a 10,000-event plan about 0.03 s."""

    def account(self, name: str) -> Located[Account] | None:
        for acc in self.accounts:
            if acc.model.name == name:
                return acc
        return None


def build(docs: list[RawDocument], diags: Diagnostics) -> ManifestSet:
    result = ManifestSet(documents=docs)
    for doc in docs:
        model = None if doc.refused else _validate(doc, diags)
        if model is None and _is_account(doc.data):
            result.invalid_accounts.add(doc.data["metadata"]["name"])
        if isinstance(model, Account):
            result.accounts.append(Located(model, doc.source))
        elif isinstance(model, ConversionEvent):
            result.events.append(Located(model, doc.source))
    return result


def _is_account(data: Any) -> bool:
    if not isinstance(data, dict) or data.get("kind") != "Account":
        return False
    meta = data.get("metadata")
    return isinstance(meta, dict) and isinstance(meta.get("name"), str)


def _validate(doc: RawDocument, diags: Diagnostics) -> BaseModel | None:
    data, src = doc.data, doc.source
    if not isinstance(data, dict):
        diags.error("E008", "a manifest document must be a mapping with apiVersion, kind, "
                    "metadata and spec", src.at(()))
        return None
    if data.get("apiVersion") != API_VERSION:
        where = src.at(("apiVersion",)) if "apiVersion" in data else src.at(())
        got = data.get("apiVersion")
        what = f"unsupported apiVersion {got!r}" if got is not None else "missing apiVersion"
        diags.error("E009", f"{what}; expected '{API_VERSION}'", where)
        return None
    kind = data.get("kind")
    model_cls = KINDS.get(kind) if isinstance(kind, str) else None
    if model_cls is None:
        where = src.at(("kind",)) if "kind" in data else src.at(())
        diags.error("E009", f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}", where)
        return None
    try:  # model_validate's own validator, without its Python frame (10,000 calls a plan)
        model: BaseModel = model_cls.__pydantic_validator__.validate_python(data, strict=True)
        return model
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
    for err in errors:
        _report(err, data, doc, diags, model_cls)
    # Unknown fields alone (typos, mostly) must not hide the rule checks of the rest.
    if all(err["type"] == "extra_forbidden" for err in errors):
        pruned = copy.deepcopy(data)
        for err in errors:
            _drop(pruned, _data_path(data, tuple(err["loc"])))
        try:
            return model_cls.model_validate(pruned, strict=True)
        except ValidationError:
            return None
    return None


def _drop(data: Any, path: Path) -> None:
    node = data
    for step in path[:-1]:
        node = node[step]
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _data_path(data: Any, loc: tuple[Any, ...]) -> Path:
    """Map a pydantic ``loc`` to the deepest existing path in the raw data."""
    path: list[str | int] = []
    node = data
    for step in loc:
        in_dict = isinstance(node, dict) and step in node
        in_list = isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
        if not (in_dict or in_list):
            continue  # a union member tag or a missing key
        node = node[step]
        path.append(step)
    return tuple(path)


def _report(err: Any, data: Any, doc: RawDocument, diags: Diagnostics,
            model_cls: type[BaseModel]) -> None:
    loc = tuple(err["loc"])
    path = _data_path(data, loc)
    kind, src = err["type"], doc.source
    dotted = ".".join(str(p) for p in loc if not _is_tag(p))
    if kind == "extra_forbidden":
        name = str(loc[-1])
        hint = _suggest(name, _fields_at(model_cls, loc[:-1]))
        if looks_like_secret(name) or looks_like_secret(dotted):
            diags.error("E101", f"unknown field {NOT_SHOWN}", src.at(path, key=True))
        else:
            diags.error("E101", f"unknown field '{name}' at {dotted}{hint}",
                        src.at(path, key=True))
    elif kind == "missing":
        diags.error("E102", f"missing required field '{dotted}'", src.at(path, key=True))
    elif kind in CODE_RULES:
        diags.error(kind, err["msg"], src.at(path), CODE_RULES[kind])
    else:
        hint = _type_hint(kind, _get(data, path)) if path == _untagged(loc) else ""
        diags.error("E103", f"{dotted}: {err['msg']}{hint}", src.at(path))


def _untagged(loc: tuple[Any, ...]) -> Path:
    """``loc`` without pydantic's union member tags: the data path it names."""
    return tuple(step for step in loc if not _is_tag(step))


def _type_hint(kind: str, value: Any) -> str:
    """Why YAML gave a field the wrong type, when an unquoted scalar is the likely cause."""
    if value is None:
        return " (the value is empty or null)"
    if kind == "string_type":
        if isinstance(value, bool):
            return (" (YAML 1.1 reads unquoted yes/no/on/off/true/false as a boolean: quote the "
                    "value, e.g. \"yes\")")
        if isinstance(value, int | float):
            return " (YAML read an unquoted number: quote the value)"
        if isinstance(value, datetime.date):
            return " (YAML read an unquoted date: quote the value)"
    if kind in ("int_type", "float_type", "bool_type") and isinstance(value, str):
        return " (the value is quoted or is not a plain YAML number or true/false)"
    return ""


def _get(data: Any, path: Path) -> Any:
    for step in path:
        data = data[step]
    return data


def _is_tag(step: Any) -> bool:
    return isinstance(step, str) and (step[:1].isupper() or step in ("str",))


def _fields_at(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, ...]:
    """Field names (aliases) of the model(s) found at ``loc`` below ``root``."""
    models = [root]
    for step in loc:
        if isinstance(step, int):
            continue
        named = [m for m in models if m.__name__ == step]  # a union member tag
        if named:
            models = named
            continue
        models = [arg for m in models for name, info in m.model_fields.items()
                  if step in (name, info.alias) for arg in _model_args(info.annotation)]
    return tuple(sorted({info.alias or name for m in models
                         for name, info in m.model_fields.items()}))


def _model_args(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        yield from _model_args(arg)
    for meta in getattr(annotation, "__metadata__", ()) or ():
        yield from _model_args(getattr(meta, "annotation", None))


def _suggest(name: str, options: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.75)
    return f"; did you mean '{close[0]}'?" if close else ""
