"""Racing writers never strand an event (E128, R1): one writer creates a LinkedIn event while
another removes the account's linkedin block, on their own connections (SQLite: one file;
PostgreSQL: one database), round after round. Exactly one of the two writes wins each round,
the other is refused with E128, and the state never holds a LinkedIn event of an account
without its block: the backend reads the account's events in the transaction of the account
write (SQLite: one writer at a time; PostgreSQL: both writes lock the account's row first).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from statekit import account_spec, form_event

from reconciler.core.live import EventWrite
from reconciler.core.models import EventSpec
from reconciler.core.provider import Provider
from reconciler.errors import RuleViolationError

ROUNDS = 15
LINKEDIN = {"adAccount": "urn:li:sponsoredAccount:5123", "accessToken": {"env": "LI_TOKEN"}}


def _linkedin_event(name: str) -> EventWrite:
    data = form_event(name).spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    del data["adAccount"], data["trigger"]["formSubmission"]["facebookEvent"]
    spec = EventSpec.model_validate({**data, "network": "linkedin",
                                     "conversionRule": "urn:lla:llaPartnerConversion:1"})
    return EventWrite(account="acme", name=name, spec=spec)


def _round(creator: Provider, remover: Provider, name: str, version: int) -> dict[str, bool]:
    """Both writes at once; which of them went through."""
    barrier, won = threading.Barrier(2), {}

    def attempt(who: str, write: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            write()
            won[who] = True
        except RuleViolationError as exc:
            assert (exc.code, exc.rule) == ("E128", "R1"), str(exc)
            won[who] = False

    threads = [
        threading.Thread(target=attempt, args=(
            "create", lambda: creator.create_event(_linkedin_event(name)))),
        threading.Thread(target=attempt, args=(
            "remove", lambda: remover.put_account("acme", account_spec(), {}, version)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return won


def _race(main: Provider, make: Callable[[], Provider]) -> None:
    creator, remover = make(), make()
    for round_ in range(ROUNDS):
        for event in main.list_events("acme"):
            main.delete_event(event.id)
        [live] = main.list_accounts()
        if live.spec.linkedin is None:
            live = main.put_account("acme", account_spec(linkedin=LINKEDIN), {}, live.version)
        won = _round(creator, remover, f"li-{round_}", live.version)
        assert sorted(won.values()) == [False, True], (round_, won)
        [after] = main.list_accounts()
        events = main.list_events("acme")
        assert (after.spec.linkedin is None) == (not events) == won["remove"], round_
    for provider in (creator, remover):
        close = getattr(provider, "close", None)
        if close is not None:
            close()


def test_sqlite_writers_on_one_file(tmp_path: Path) -> None:
    from reconciler.adapters.state.sqlite import SqliteProvider

    path = tmp_path / "state.db"
    main = SqliteProvider(path)
    main.put_account("acme", account_spec(linkedin=LINKEDIN), {}, None)
    _race(main, lambda: SqliteProvider(path))
    main.close()


def test_postgres_writers_on_one_database(postgres_url: str) -> None:
    from reconciler.adapters.state.postgres import PostgresProvider

    main = PostgresProvider(postgres_url)
    main.put_account("acme", account_spec(linkedin=LINKEDIN), {}, None)
    _race(main, lambda: PostgresProvider(postgres_url))
    main.close()
