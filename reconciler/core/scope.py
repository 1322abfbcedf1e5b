"""``--account`` scope: the desired and live state of the named accounts only (issue 14).

A scoped validate, plan or apply sees only the named accounts: their Account documents, their
events, their live objects. Other accounts are neither planned nor touched (no deletes for an
account the scope does not name). Without a scope (``None``) every account the manifests or the
live state hold is planned, as before: planning a manifest subset without ``--account`` still
plans deletes for live events of accounts the subset does not declare.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from reconciler.core.validate import ManifestSet
from reconciler.errors import UsageError

Scope = tuple[str, ...] | None


def make_scope(names: Iterable[str]) -> Scope:
    """``--account`` values as a scope: sorted, unique; no names: the whole state (None)."""
    unique = sorted(set(names))
    return tuple(unique) if unique else None


def in_scope(scope: Scope, account: str) -> bool:
    return scope is None or account in scope


def doc_in_scope(data: object, scope: Scope) -> bool:
    """Whether a parsed manifest document belongs to the scope: an Account by its name, an event
    by ``spec.account``. A document whose account cannot be told (not a mapping, no account) is
    kept, so its errors are still reported."""
    if scope is None or not isinstance(data, dict):
        return True
    if data.get("kind") == "Account":
        meta = data.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
    else:
        spec = data.get("spec")
        name = spec.get("account") if isinstance(spec, dict) else None
    return not isinstance(name, str) or name in scope


def declared_accounts(manifests: ManifestSet) -> set[str]:
    """Every account name the manifests mention: declared (valid or not) or used by an event."""
    return ({a.model.name for a in manifests.accounts} | set(manifests.invalid_accounts)
            | {e.model.spec.account for e in manifests.events})


def check_known(scope: Scope, manifests: ManifestSet, live: Collection[str] | None,
                where: str) -> None:
    """Refuse (``UsageError``) a scope naming an account neither in the manifests nor live
    (``live`` None: offline, the manifests only); ``where`` names the manifest paths."""
    if scope is None:
        return
    known = declared_accounts(manifests) | set(live or ())
    unknown = [name for name in scope if name not in known]
    if unknown:
        live_too = "" if live is None else " and no live account has that name"
        raise UsageError(f"unknown account {', '.join(repr(n) for n in unknown)} in --account: "
                         f"no manifest in {where} mentions it{live_too}")
