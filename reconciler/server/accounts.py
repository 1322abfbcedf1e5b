"""``/v1/accounts``: list, create or update (``If-Match``), and an account's forms."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response
from pydantic import TypeAdapter

from reconciler.core.live import LiveAccount
from reconciler.core.models import Form
from reconciler.server.api_models import AccountPut
from reconciler.server.auth import READ, WRITE
from reconciler.server.deps import (
    ACCOUNTS,
    errors,
    list_response,
    model_response,
    parse_if_match,
    provider,
)
from reconciler.server.errors import ApiError

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])
FORMS = TypeAdapter(list[Form])

# No pattern here: the name rule is the backend's (E106, the code validate gives), not a
# generic 422 validation_error.
AccountName = Annotated[str, Path(description="Account name (lowercase letters, digits, '-', "
                                  "at most 63 characters; else 422 E106).")]


@router.get("", response_model=list[LiveAccount], dependencies=[READ], responses=errors())
def list_accounts(request: Request) -> Response:
    """Every account, by name."""
    return list_response(ACCOUNTS, provider(request).list_accounts())


@router.put("/{name}", response_model=LiveAccount, dependencies=[WRITE],
            responses={201: {"model": LiveAccount, "description": "Created"},
                       **errors(409, 412)})
def put_account(request: Request, name: AccountName, body: AccountPut,
                if_match: Annotated[str | None, Header()] = None) -> Response:
    """Create the account (no ``If-Match``) or update the version named by ``If-Match``.

    A tier change that leaves more lifecycle-stage slots in use than the new limit is 409 (R9);
    an account its manifest could not be (a bad name, pixel or ad account...) is 422 with the
    code validate gives (E106, E111 (R3), E112 (R2)...), and so is an update removing the
    network block its live events of that network need (E128, R1).
    """
    version = parse_if_match(if_match)
    account = provider(request).put_account(name, body.spec, body.labels, version)
    return model_response(account, 201 if version is None else 200)


@router.get("/{name}/forms", response_model=list[Form], dependencies=[READ],
            responses=errors(404))
def list_forms(request: Request, name: str) -> Response:
    """The forms of the account's CRM portal (R12)."""
    return list_response(FORMS, list(find_account(request, name).spec.forms))


def find_account(request: Request, name: str) -> LiveAccount:
    for account in provider(request).list_accounts():
        if account.name == name:
            return account
    raise ApiError(404, "not_found", f"account '{name}' does not exist in the live state")
