"""The manifest rules applied to one write: an account, or one event of an account.

``convctl validate`` and every write path (the state backends, and so the control plane) share
one implementation: a write is turned back into the manifest documents it stands for and run
through the same model validation (``validate.build``) and rule checks (``rules.check``). A write
is therefore refused with exactly the code and R-rule validate reports for the same content
(E106 names, E202 ad accounts (R1), E304/E305/E306 stages (R6), E104 token-like labels...).

Differences, on purpose: there are no file positions; a token file's folder is not checked
(agents and servers each have their own ``--secrets-dir``; the path must still be absolute,
without ``..``); the quota (E313, R9) is left to the
backend, which counts the live slots atomically with the write; warnings never refuse a write.
An account write is also checked against the account's live events for one rule validate checks
on the events: each network an event sends to keeps its block (E128, R1; ``stranded``). Removing
an ad account a live Meta event names is not refused (E202 is the event's: the event may still
be switched off, or replaced by a plan that moves it to the new ad account).
One conversion rule or action per event (E317, R16) is a rule of the whole desired state, which
validate and plan check: a single write is not refused for it, since an apply may pass through a
step where an event and the one taking over its conversion both exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from reconciler.core import network_rules, rules, validate
from reconciler.core.credentials import shown as _shown
from reconciler.core.models import API_VERSION, Account, AccountSpec, EventSpec, Metadata
from reconciler.core.source import Located, RawDocument, SourceMap
from reconciler.diagnostics import Diagnostic, Diagnostics, Severity

_ACCOUNT, _EVENT = "<account>", "<event>"
_BACKEND_RULES = frozenset({"E313"})  # quota: the backend decides it with the live counts


def _document(kind: str, name: str, labels: Mapping[str, str], spec: dict[str, Any]
              ) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind,
            "metadata": {"name": name, "labels": dict(labels)}, "spec": spec}


def _findings(docs: list[RawDocument], source: str, account: Account | None = None
              ) -> list[Diagnostic]:
    diags = Diagnostics()
    manifests = validate.build(docs, diags)
    if account is not None:  # already a validated model: not parsed again for every event
        manifests.accounts.insert(0, Located(account, SourceMap(_ACCOUNT)))
    rules.check(manifests, diags, secrets_dir=None)  # each agent checks its own folder
    return [d for d in diags.errors if d.code not in _BACKEND_RULES
            and d.location is not None and d.location.file == source]


def _account_doc(name: str, spec: AccountSpec, labels: Mapping[str, str]) -> RawDocument:
    data = _document("Account", name, labels, spec.model_dump(mode="json", by_alias=True))
    return RawDocument(data, SourceMap(_ACCOUNT))


def account_findings(name: str, spec: AccountSpec, labels: Mapping[str, str]
                     ) -> list[Diagnostic]:
    """The errors ``validate`` reports for an Account manifest with this name, spec, labels."""
    return _findings([_account_doc(name, spec, labels)], _ACCOUNT)


def event_findings(account: str, account_spec: AccountSpec, name: str, spec: EventSpec,
                   labels: Mapping[str, str]) -> list[Diagnostic]:
    """The errors ``validate`` reports for this event's ConversionEvent manifest, next to its
    account's manifest (findings about the account itself are not the event's)."""
    event = _document("ConversionEvent", name, labels, spec.model_dump(mode="json", by_alias=True))
    model = Account.model_construct(api_version="convctl/v1", kind="Account",
                                    metadata=Metadata.model_construct(name=account, labels={},
                                                                      renamed_from=None),
                                    spec=account_spec)
    return _findings([RawDocument(event, SourceMap(_EVENT))], _EVENT, model)


class NetworkUse(NamedTuple):
    """The live events of one account that send to ``network``: how many, and the first by
    name (for the message)."""

    network: str
    first: str
    events: int


def unblocked_networks(spec: AccountSpec) -> list[str]:
    """The networks this account spec has no block for (``network_rules.BLOCKS``): a backend
    only reads its live events' networks when there is one."""
    return [n for n, block in network_rules.BLOCKS.items() if getattr(spec, block) is None]


def stranded(name: str, spec: AccountSpec, uses: Iterable[NetworkUse]) -> list[Diagnostic]:
    """E128 (R1) for each network the account's live events send to that ``spec`` has no block
    for: the account write would leave them unsendable (validate's words, then which events)."""
    missing = set(unblocked_networks(spec))
    found = []
    for use in sorted(uses):
        if use.network in missing:
            label = network_rules.LABELS[use.network]
            others = f" and {use.events - 1} more" if use.events > 1 else ""
            found.append(Diagnostic(
                Severity.ERROR, "E128",
                f"{network_rules.no_block(name, use.network)}; delete its live {label} "
                f"events first ({_shown(use.first)}{others})", rule="R1"))
    return found
