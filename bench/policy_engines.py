"""Rego (regopy) against CEL (common-expression-language, cel-python) for plan policies.

The four example policies (``examples/policies/*.rego`` and their CEL equivalents below) over
one synthetic policy input (the JSON of a plan creating 1,000 events in 10 accounts, five of them
labelled region=eu, 100 lifecycle deletes, and the desired state of those 1,000 events). Per
engine: the import time (a fresh interpreter per run), compiling the four policies, and one
evaluation of all four (input conversion included); min / median / max of the runs. Each engine
must find the same violations.

    python bench/policy_engines.py            # 3 runs
    python bench/policy_engines.py --runs 5
    python bench/policy_engines.py --quick    # 1 run, 100 events (smoke test)

regopy is a convctl dependency; the CEL engines are not: `pip install common-expression-language
cel-python` to measure them (an engine that is not installed is listed as such).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _stats

REPO = Path(__file__).resolve().parent.parent
REGO_DIR = REPO / "examples" / "policies"
ACCOUNTS = 10
EVENTS = 1000
DELETES = 100

# The same four rules in CEL: each expression yields the list of violation messages.
CEL = {
    "form_email": (
        'input.changes.filter(c, c.kind == "event" && type(c.after) == map'
        ' && has(c.after.spec.trigger.formSubmission)'
        ' && !c.after.spec.dataSharing.properties.exists(p,'
        ' type(p) == string ? p == "email" : p.property == "email"))'
        '.map(c, c.address + ": a form event must share email")'),
    "eu_no_ip": (
        'input.changes.filter(c, c.kind == "event" && type(c.after) == map'
        ' && c.after.spec.dataSharing.ipAddress'
        ' && input.desired.accounts[c.account].labels.exists(k, k == "region")'
        ' && input.desired.accounts[c.account].labels.region == "eu")'
        '.map(c, c.address + ": account " + c.account + " is labelled region=eu")'),
    "lifecycle_delete_approved": (
        'input.changes.filter(c, c.kind == "event" && "delete" in c.actions'
        ' && has(c.before.spec.trigger.lifecycleStageChange)'
        ' && !("approved-by" in c.before.labels))'
        '.map(c, c.address + ": a lifecycle event is deleted without the label approved-by")'),
    # CEL has no set comprehension or group-by (counting per event is quadratic: 395 s for
    # 1,000 events with the Rust binding): go through each account's declared ad accounts.
    "max_events_per_ad_account": (
        'input.desired.accounts.filter(n, input.desired.accounts[n].spec.facebook.adAccounts'
        '.exists(ad, input.desired.events.filter(e, e.spec.adAccount == ad).size() > 25))'
        '.map(n, "account " + n + " has an ad account with more than 25 events")'),
}


def _event(i: int, account: str, lifecycle: bool) -> dict[str, Any]:
    trigger: dict[str, Any] = (
        {"lifecycleStageChange": {"stages": ["lead", "customer"], "contacts": "all"}}
        if lifecycle else {"formSubmission": {"formId": f"form-{i}", "facebookEvent": "Lead"}})
    props: list[Any] = ["email", "phone"] if i % 7 else [{"property": "hs_object_id",
                                                          "as": "external_id"}]
    return {"name": f"ev-{i}", "labels": {"team": "growth"},
            "spec": {"account": account, "adAccount": f"act_{account}", "enabled": True,
                     "protect": False, "trigger": trigger,
                     "dataSharing": {"properties": props, "ipAddress": i % 3 == 0}}}


def policy_input(n_events: int = EVENTS) -> dict[str, Any]:
    """A plan of 1,000 creates and 100 deletes plus the desired state, as convctl builds it."""
    names = [f"acct-{a}" for a in range(ACCOUNTS)]
    events = [_event(i, names[i % ACCOUNTS], i % 2 == 0) for i in range(n_events)]
    changes = [{"address": f"event.{e['spec']['account']}/{e['name']}", "kind": "event",
                "account": e["spec"]["account"], "name": e["name"], "actions": ["create"],
                "before": None, "after": e, "diffs": []} for e in events]
    for i in range(DELETES):
        gone = _event(n_events + i, names[i % ACCOUNTS], True)
        if i % 2:
            gone["labels"]["approved-by"] = "alice"
        changes.append({"address": f"event.{gone['spec']['account']}/{gone['name']}",
                        "kind": "event", "account": gone["spec"]["account"],
                        "name": gone["name"], "actions": ["delete"], "before": gone,
                        "after": None, "diffs": []})
    accounts = {n: {"name": n, "labels": {"region": "eu" if a % 2 else "us"},
                    "spec": {"facebook": {"adAccounts": [f"act_{n}"]}}}
                for a, n in enumerate(names)}
    return {"format_version": "1.0", "changes": changes, "quotas": [], "unmanaged": [],
            "errors": [], "warnings": [], "desired": {"accounts": accounts, "events": events}}


# --- engines: compile(sources) -> evaluator(input) -> {policy: count} -----------------------

def rego_compile() -> Callable[[dict[str, Any]], dict[str, int]]:
    from regopy import Interpreter

    interp = Interpreter()
    for path in sorted(REGO_DIR.glob("*.rego")):
        interp.add_module(path.name, path.read_text(encoding="utf-8"))

    def run(doc: dict[str, Any]) -> dict[str, int]:
        interp.set_input(doc)
        out = interp.query("x = {name: data.convctl[name].deny | data.convctl[name]}")
        found = json.loads(out.binding("x").json())
        return {name: len(msgs) for name, msgs in found.items()}

    run({"changes": [], "desired": {"accounts": {}, "events": []}})  # compile now
    return run


def cel_rust_compile() -> Callable[[dict[str, Any]], dict[str, int]]:
    import cel

    programs = {name: cel.compile(src) for name, src in CEL.items()}

    def run(doc: dict[str, Any]) -> dict[str, int]:
        context = cel.Context()  # converts the input once for the four programs
        context.add_variable("input", doc)
        return {n: len(p.execute(context)) for n, p in programs.items()}

    return run


def cel_python_compile() -> Callable[[dict[str, Any]], dict[str, int]]:
    import celpy

    env = celpy.Environment()
    programs = {name: env.program(env.compile(src)) for name, src in CEL.items()}

    def run(doc: dict[str, Any]) -> dict[str, int]:
        activation = {"input": celpy.json_to_cel(doc)}
        return {n: len(p.evaluate(activation)) for n, p in programs.items()}

    return run


ENGINES: dict[str, tuple[str, Callable[[], Callable[[dict[str, Any]], dict[str, int]]]]] = {
    "Rego (regopy 1.5.2, rego-cpp)": ("regopy", rego_compile),
    "CEL (common-expression-language 0.10.0, Rust)": ("cel", cel_rust_compile),
    "CEL (cel-python 0.5.0, pure Python)": ("celpy", cel_python_compile),
}


def import_seconds(module: str) -> float:
    code = (f"import time; t = time.perf_counter(); import {module}; "
            "print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout)


def _ms(values: list[float]) -> str:
    return _stats.spread(values, "{:.1f}", 1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 run over 100 events")
    args = parser.parse_args(argv)
    runs = _stats.runs(args.runs, args.quick)
    doc = policy_input(100 if args.quick else EVENTS)
    print(f"{len(doc['changes'])} changes, {len(doc['desired']['events'])} desired events; "
          f"min / median / max of {runs} runs, ms; {_stats.machine()}")
    print("Each round runs every engine once, so the ratio to Rego (the chosen engine) is taken "
          "per round.")
    print()
    print("| engine | import | compile 4 policies | evaluate 4 policies | evaluate vs Rego | "
          "violations |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    engines = {label: entry for label, entry in ENGINES.items()
               if importlib.util.find_spec(entry[0]) is not None}
    times: dict[str, tuple[list[float], list[float], list[float]]] = {
        label: ([], [], []) for label in engines}
    found: dict[str, dict[str, int]] = {}
    for _ in range(runs):
        for label, (module, compile_) in engines.items():
            imports, compiles, evals = times[label]
            imports.append(import_seconds(module))
            start = time.perf_counter()
            run = compile_()
            compiles.append(time.perf_counter() - start)
            start = time.perf_counter()
            found[label] = run(doc)
            evals.append(time.perf_counter() - start)
    expected = next(iter(found.values()), None)
    rego = next((label for label in engines if label.startswith("Rego")), None)
    for label in ENGINES:
        if label not in engines:
            print(f"| {label} | not installed | | | | |")
            continue
        if found[label] != expected:
            sys.exit(f"{label} disagrees: {found[label]} != {expected}")
        imports, compiles, evals = times[label]
        versus = _stats.ratio_spread(evals, times[rego][2]) if rego else "-"
        counts = ", ".join(f"{k} {v}" for k, v in sorted(found[label].items()))
        print(f"| {label} | {_ms(imports)} | {_ms(compiles)} | {_ms(evals)} | {versus} "
              f"| {counts} |")
    print(f"\nload at the end: {_stats.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
