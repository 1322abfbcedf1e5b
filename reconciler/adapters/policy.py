"""Plan policies written in Rego, compiled and evaluated in-process with regopy (rego-cpp).

A policies folder holds ``*.rego`` files (recursively, sorted; hidden entries and OPA's
``*_test.rego`` files skipped). Each Rego package is one policy, named by its package path
(``convctl.eu_no_ip``). Its ``deny`` and ``violation`` rules are blocking, its ``warn`` rules
advisory, conftest's conventions, so existing conftest policies keep working. A package whose
METADATA annotation (the comment block right above ``package``) says ``custom: {advisory:
true}`` is advisory as a whole. Problems are positioned diagnostics, never exceptions:

    E501  the file does not parse or compile (rego-cpp's message, at its line:col)
    E502  a package fails to evaluate on an empty input (e.g. an unknown function)
    E503  no usable ``package`` line, or a METADATA block that is not a YAML mapping
    E504  the file or folder cannot be read (missing, not UTF-8)

``evaluate`` raises ``PolicyError`` (E505) when a policy fails over the real input: builtin
errors are strict, so a broken ``sprintf`` refuses the plan instead of passing it silently.
regopy is imported here only, when a policies folder is used (``convctl --help`` never loads it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from reconciler.core.policy import Violation
from reconciler.diagnostics import Diagnostics, SourceLocation
from reconciler.errors import PolicyError

if TYPE_CHECKING:
    from regopy import Interpreter  # type: ignore[import-untyped]

BLOCKING_RULES = ("deny", "violation")
ADVISORY_RULES = ("warn",)
_PACKAGE = re.compile(r"^package[ \t]+([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
                      r"[ \t]*(?:#.*)?$", re.MULTILINE)
_SEXPR_ERROR = re.compile(r"\(error \d+:(?P<file>[^|\n]*)\|(?P<offset>\d+)\|\d+\s*"
                          r"\(errormsg \d+:(?P<msg>[^\n]*)\)")
_ERRORMSG = re.compile(r"\(errormsg \d+:(?P<msg>[^\n]*)\)")
_UNKNOWN_FUNCTION = re.compile(r"Function not found: ([\w.]+)")


@dataclass(frozen=True)
class Policy:
    """One Rego package: its name, the first file declaring it, whether it only warns."""

    name: str
    file: str
    advisory: bool = False


@dataclass
class PolicySet:
    """The compiled policies of one folder, ready to evaluate any number of inputs."""

    directory: str
    policies: tuple[Policy, ...] = ()
    modules: dict[str, str] = field(default_factory=dict)  # file -> source


def discover(directory: Path) -> list[Path]:
    """The policy files of a folder, sorted; hidden entries and ``*_test.rego`` skipped."""
    return sorted(p for p in directory.rglob("*.rego")
                  if not any(part.startswith(".") for part in p.relative_to(directory).parts)
                  and not p.name.endswith("_test.rego") and p.is_file())


def load(directory: str | Path, diags: Diagnostics) -> PolicySet:
    """Read, parse and compile every policy under ``directory``; problems go to ``diags``."""
    folder = Path(directory)
    out = PolicySet(str(folder))
    if not folder.is_dir():
        diags.error("E504", "no such policies folder", SourceLocation(str(folder)))
        return out
    seen: dict[str, Policy] = {}
    for path in discover(folder):
        source = _read(path, diags)
        policy = None if source is None else _header(str(path), source, diags)
        if source is None or policy is None:
            continue
        out.modules[str(path)] = source
        if policy.name not in seen:
            seen[policy.name] = policy
        elif policy.advisory and not seen[policy.name].advisory:
            seen[policy.name] = Policy(policy.name, seen[policy.name].file, True)
    out.policies = tuple(seen.values())
    if not diags.has_errors:
        _check_compiles(out, diags)
    return out


def _read(path: Path, diags: Diagnostics) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        diags.error("E504", f"cannot read policy: {exc.strerror}", SourceLocation(str(path)))
    except UnicodeDecodeError:
        diags.error("E504", "policy is not UTF-8 text", SourceLocation(str(path)))
    return None


def _header(file: str, source: str, diags: Diagnostics) -> Policy | None:
    """The package name and whether its package-scope METADATA marks it advisory."""
    match = _PACKAGE.search(source)
    if match is None:
        diags.error("E503", "no `package NAME` line (a policy is a Rego package named with "
                    "letters, digits, _ and dots)", SourceLocation(file, 1, 1))
        return None
    line = source.count("\n", 0, match.start()) + 1
    meta = _metadata(source.splitlines()[:line - 1], file, line, diags)
    custom = meta.get("custom")
    return Policy(match.group(1), file, isinstance(custom, dict) and custom.get("advisory") is True)


def _metadata(above: list[str], file: str, package_line: int,
              diags: Diagnostics) -> dict[str, Any]:
    """The YAML of the ``# METADATA`` comment block directly above the package line."""
    block: list[str] = []
    for text in reversed(above):
        if not text.startswith("#"):
            break
        block.insert(0, text)
    starts = [i for i, text in enumerate(block) if text.strip() == "# METADATA"]
    if not starts:
        return {}
    body = block[starts[-1] + 1:]
    first = package_line - len(body)
    try:
        meta = yaml.safe_load("\n".join(t[2:] if t.startswith("# ") else t[1:] for t in body))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = SourceLocation(file, first + (mark.line if mark else 0), 3 + (mark.column
                                                                              if mark else 0))
        diags.error("E503", f"METADATA is not valid YAML: {getattr(exc, 'problem', exc)}", where)
        return {}
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        diags.error("E503", "METADATA must be a YAML mapping (title:, custom: ...)",
                    SourceLocation(file, first, 1))
        return {}
    return meta


def _interpreter(policies: PolicySet) -> Interpreter:
    """A fresh interpreter holding every module; raises regopy's RegoError on a bad one."""
    from regopy import Interpreter, LogLevel

    interp = Interpreter()
    interp.log_level = LogLevel.NONE  # errors come back as values; never on our stderr
    interp.strict_built_in_errors = True
    for file, source in policies.modules.items():
        interp.add_module(file, source)
    return interp


def _check_compiles(policies: PolicySet, diags: Diagnostics) -> None:
    from regopy import RegoError

    for file, source in policies.modules.items():  # each file alone: every syntax error shown
        try:
            _interpreter(PolicySet(policies.directory, (), {file: source}))
        except RegoError as exc:
            _compile_errors(str(exc), policies, diags)
    if diags.has_errors:
        return
    try:
        interp = _interpreter(policies)
    except RegoError as exc:
        _compile_errors(str(exc), policies, diags)
        return
    interp.set_input({})
    for policy in policies.policies:
        try:
            _query(interp, policy.name)
        except PolicyError as exc:
            diags.error("E502", f"policy {policy.name} does not evaluate: {exc}",
                        _locate(str(exc), policy, policies))


def _compile_errors(text: str, policies: PolicySet, diags: Diagnostics) -> None:
    found = list(_SEXPR_ERROR.finditer(text))
    for m in found:
        file = m.group("file")
        source = policies.modules.get(file, "")
        diags.error("E501", f"policy does not compile: {m.group('msg')}",
                    _position(file, source, int(m.group("offset"))))
    if not found:
        msg = _ERRORMSG.search(text)
        diags.error("E501", f"policies do not compile: {msg.group('msg') if msg else text}",
                    SourceLocation(policies.directory))


def _position(file: str, source: str, offset: int) -> SourceLocation:
    """rego-cpp reports a byte offset; users read line:col (1-based, in characters)."""
    head = source.encode("utf-8")[:offset].decode("utf-8", errors="ignore")
    line = head.count("\n") + 1
    return SourceLocation(file, line, len(head) - (head.rfind("\n") + 1) + 1)


def _locate(message: str, policy: Policy, policies: PolicySet) -> SourceLocation:
    """Where an unknown function is called, else the policy's file."""
    unknown = _UNKNOWN_FUNCTION.search(message)
    if unknown:
        call = re.compile(rf"(?<![\w.]){re.escape(unknown.group(1))}\s*\(")
        for file, source in policies.modules.items():
            package, hit = _PACKAGE.search(source), call.search(source)
            if hit and package and package.group(1) == policy.name:
                return _position(file, source, len(source[:hit.start()].encode("utf-8")))
    return SourceLocation(policy.file)


def _query(interp: Interpreter, package: str) -> dict[str, Any]:
    """``data.<package>`` as JSON; a failed evaluation raises PolicyError with its message.

    Reads the raw output through regopy's C-API wrappers: ``Interpreter.query`` raises a bare
    JSONDecodeError, losing rego-cpp's message, when the result is an error."""
    from regopy.rego_shared import (  # type: ignore[import-untyped]
        rego_free_output,
        rego_output_ok,
        rego_output_string,
        rego_query,
    )

    impl = rego_query(interp._impl, f"x = data.{package}")
    try:
        ok, text = bool(rego_output_ok(impl)), str(rego_output_string(impl))
    finally:
        rego_free_output(impl)
    if text == "undefined":
        return {}
    try:
        doc = json.loads(text) if ok else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        msg = _ERRORMSG.search(text)
        raise PolicyError(msg.group("msg") if msg else "a builtin function failed "
                          "(strict built-in errors: check its arguments)")
    value = doc.get("bindings", {}).get("x", {})
    return value if isinstance(value, dict) else {}


def evaluate(policies: PolicySet, document: dict[str, Any]) -> list[Violation]:
    """Every violation of every policy over ``document`` (``input`` in Rego), in order."""
    if not policies.policies:
        return []
    interp = _interpreter(policies)
    interp.set_input(document)
    out: list[Violation] = []
    for policy in policies.policies:
        try:
            rules = _query(interp, policy.name)
        except PolicyError as exc:
            raise PolicyError(f"{policy.file}: error[E505]: policy {policy.name} could not be "
                              f"evaluated over the plan: {exc}") from None
        for rule in (*BLOCKING_RULES, *ADVISORY_RULES):
            advisory = policy.advisory or rule in ADVISORY_RULES
            out.extend(Violation(policy.name, message, advisory, policy.file)
                       for message in _messages(rules.get(rule)))
    return out


def _messages(value: Any) -> list[str]:
    """A rule's messages: a set of strings, of ``{"msg": ...}`` objects (conftest), or the
    keys of a partial object (old ``deny[msg] { ... }`` syntax)."""
    if value is None or value is False:
        return []
    if value is True:
        return ["the plan is denied"]
    items = list(value) if isinstance(value, dict | list) else [value]
    out = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("msg", json.dumps(item, sort_keys=True))
        out.append(item if isinstance(item, str) else json.dumps(item, sort_keys=True))
    return sorted(out)
