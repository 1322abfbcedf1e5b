"""One exception tree for faults (user mistakes are diagnostics, see ``diagnostics.py``).

    ConvctlError                 base; ``str(exc)`` is one line fit for the user
    ├── UsageError               bad command-line input (exit 1, no traceback)
    ├── StateError               the live state cannot be read or written as asked
    │   ├── RuleViolationError   a write breaks a manifest rule: validate's code and R-rule (422)
    │   ├── ConflictError        a write refused: name clash, moved account (HTTP 409)
    │   │   ├── StaleVersionError    optimistic concurrency: expected version moved (HTTP 412)
    │   │   └── QuotaExceededError   the tier limit would be exceeded, R9 (HTTP 409)
    │   ├── NotFoundError        an account, event or lock does not exist
    │   ├── LockedError          another apply holds the lock
    │   └── StalePlanError       a saved plan no longer matches the live state or the manifests
    ├── PolicyError              a plan policy could not be evaluated (E505)
    ├── TransientError           worth retrying, optionally after ``retry_after`` seconds
    │   └── StoreUnavailableError    the database went away (also a StateError): retry
    └── PermanentError           retrying will not help

Adapters translate foreign errors (sqlite3, httpx, OS) into these with ``raise X from exc``.
``str(exc)`` masks tokens and escapes control characters (``core.redaction.printable``), so a
message that quotes hostile input stays one safe line wherever it is printed or logged.
"""

from __future__ import annotations


class ConvctlError(Exception):
    """Base of every error convctl raises on purpose."""

    exit_code = 1

    def __str__(self) -> str:
        from reconciler.core.redaction import printable

        return printable(super().__str__())


class UsageError(ConvctlError):
    """The command line asks for something that cannot be done."""


class StateError(ConvctlError):
    """The live state store failed or refused an operation."""


class ConflictError(StateError):
    """A write was refused: stale version, quota overflow (R9) or a name clash."""


class StaleVersionError(ConflictError):
    """An ``expected_version`` / ``If-Match`` no longer matches the live version."""


class QuotaExceededError(ConflictError):
    """The write would take an account above its tier limit (R9); the message names the
    account, the limit and the count."""


class RuleViolationError(StateError):
    """A write the manifest rules refuse, with the code (``E304``) and R-rule (``R6``) that
    ``convctl validate`` reports for the same content; ``detail`` is the finding alone."""

    def __init__(self, code: str, rule: str | None, detail: str) -> None:
        suffix = f" ({rule})" if rule else ""
        super().__init__(f"error[{code}]: {detail}{suffix}")
        self.code, self.rule, self.detail = code, rule, detail


class NotFoundError(StateError):
    """The addressed object does not exist."""


class LockedError(StateError):
    """The state is locked by another holder."""


class StalePlanError(StateError):
    """A saved plan was made against a live state or manifests that have since changed."""


class PolicyError(ConvctlError):
    """A plan policy failed while evaluating (not a violation: the policy itself is broken)."""


class TransientError(ConvctlError):
    """A failure that may succeed when retried (after ``retry_after`` seconds if given)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailableError(StateError, TransientError):
    """The state or agent database cannot be reached right now (a restart, a lost connection):
    a ``StateError`` to the commands, a ``TransientError`` to the agent, which retries."""


class PermanentError(ConvctlError):
    """A failure that retrying cannot fix."""
