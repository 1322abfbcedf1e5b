"""How fast ``convctl validate`` is on a large desired state, as a whole process.

Generates valid manifests (100 events per account: forms and lifecycle events mixed, every
account enterprise with exactly 100 lifecycle-stage slots used, i.e. at the quota but not over) in
two layouts, then times ``convctl validate DIR`` in a subprocess (wall time) and reads the
child's peak RSS:

* ``packed``: the events in as few files as the 5 MiB per-file limit allows (one file at 10,000
  events; the limit is a safety rule of the loader, so 50,000 events need a few files), accounts in
  one more file;
* ``per-file``: one file per event plus one per account, a folder per account.

It also breaks one event deep inside the packed file (a schema error in block style and a rule
error inside a flow mapping) and checks that the reported ``line:col`` is the exact one generated.

    python bench/validate_scale.py                  # 10,000 and 50,000 events
    python bench/validate_scale.py --sizes 10000    # one size
    python bench/validate_scale.py --quick          # 2,000 events, one run (smoke test)

Each case runs 3 times (min / median / max printed); before each run the floor is measured: the
CPU time of libyaml's event stream alone over the same files (PyYAML ``yaml.parse`` with the C
loader, no data built), and each run's CPU time is divided by its own floor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _stats

EVENTS_PER_ACCOUNT = 100
MAX_FILE_BYTES = 5 * 1024 * 1024 - 64 * 1024  # stay under the loader's 5 MiB limit
STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
          "customer", "evangelist")
META_EVENTS = ("Lead", "CompleteRegistration", "Contact", "SubmitApplication", "Schedule")
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "JPY")
FORMS = 4


# ---------------------------------------------------------------------------------------------
# Generation. Every document is a list of lines so the line of any value is known exactly.


def account_name(a: int) -> str:
    return f"acc-{a:05d}"


def ad_account(a: int) -> str:
    return f"act_{1_000_000_000 + a}"


def form_id(a: int, f: int) -> str:
    return f"{a:08x}-{f:04x}-4bd7-9e0b-6a1f1f9c2d10"


def account_doc(a: int) -> list[str]:
    name = account_name(a)
    lines = [
        "apiVersion: convctl/v1",
        "kind: Account",
        "metadata:",
        f"  name: {name}",
        "  labels: {owner: bench}",
        "spec:",
        f"  portalId: {4_000_000 + a}",
        "  tier: enterprise",
        "  leadSync: true",
        "  defaultCountryCode: \"1\"",
        "  customLifecycleStages:",
        f"    - {{id: \"{1_452_450_000 + a}\", label: Demo booked}}",
        "  forms:",
    ]
    lines += [f"    - {{id: {form_id(a, f)}, name: Form {f}}}" for f in range(FORMS)]
    lines += [
        "  facebook:",
        f"    businessId: \"{5_000_000_000 + a}\"",
        f"    pixelId: \"{123_456_789_000_000 + a}\"",
        f"    adAccounts: [{ad_account(a)}]",
        f"    accessToken: {{env: META_TOKEN_{a}}}",
    ]
    return lines


def event_doc(a: int, e: int) -> list[str]:
    """Even ``e``: a form event; odd: a lifecycle event selecting 2 stages (50 x 2 = 100 slots)."""
    head = [
        "apiVersion: convctl/v1",
        "kind: ConversionEvent",
        "metadata:",
        f"  name: ev-{e:03d}",
        "spec:",
        f"  account: {account_name(a)}",
        f"  adAccount: {ad_account(a)}",
        "  trigger:",
    ]
    if e % 2:
        custom = f"\"{1_452_450_000 + a}\""
        pool = (*STAGES, custom)
        first = pool[e % len(pool)]
        second = pool[(e // 2 + 3) % len(pool)]
        if second == first:
            second = pool[(e % len(pool) + 1) % len(pool)]
        return [*head,
                "    lifecycleStageChange:",
                f"      stages: [{first}, {second}]",
                f"      contacts: {'all' if e % 4 == 1 else 'adInteractions'}"]
    return [*head,
            "    formSubmission:",
            f"      formId: {form_id(a, e % FORMS)}",
            f"      facebookEvent: {META_EVENTS[e % len(META_EVENTS)]}",
            f"      value: {{amount: {10 + e}, currency: {CURRENCIES[e % len(CURRENCIES)]}}}",
            "      consent: {property: fb_consent, value: \"yes\"}",
            "  dataSharing:",
            "    properties: [email, phone, {property: hs_object_id, as: external_id}]",
            "    ipAddress: true"]


def event_ids(n_events: int) -> Iterator[tuple[int, int]]:
    for i in range(n_events):
        yield divmod(i, EVENTS_PER_ACCOUNT)


def documents_text(n_events: int) -> str:
    """All accounts and events as one multi-document YAML text (for the parser benchmark)."""
    n_accounts = -(-n_events // EVENTS_PER_ACCOUNT)
    docs = [account_doc(a) for a in range(n_accounts)]
    docs += [event_doc(a, e) for a, e in event_ids(n_events)]
    return "".join("---\n" + "\n".join(doc) + "\n" for doc in docs)


@dataclass
class Break:
    """One event broken on purpose, and where the diagnostic must point."""

    label: str
    code: str
    file: Path
    line: int
    col: int


def write_packed(root: Path, n_events: int, broken: str | None = None) -> Break | None:
    """Accounts in ``accounts.yaml``; events in ``events-NN.yaml`` files under the size limit."""
    root.mkdir(parents=True)
    n_accounts = -(-n_events // EVENTS_PER_ACCOUNT)
    (root / "accounts.yaml").write_text(
        "".join("---\n" + "\n".join(account_doc(a)) + "\n" for a in range(n_accounts)))
    target = n_events // 2 + 6  # an even index: a form event in the middle of the set
    found: Break | None = None
    chunk: list[str] = []
    size = part = 0

    def flush() -> None:
        nonlocal chunk, size, part
        if chunk:
            (root / f"events-{part:02d}.yaml").write_text("\n".join(chunk) + "\n")
            chunk, size, part = [], 0, part + 1

    for i, (a, e) in enumerate(event_ids(n_events)):
        lines = ["---", *event_doc(a, e)]
        doc_bytes = sum(len(line) + 1 for line in lines)
        if size + doc_bytes > MAX_FILE_BYTES:
            flush()
        if i == target and broken is not None:
            found = _break(lines, broken, root / f"events-{part:02d}.yaml", len(chunk))
        chunk.extend(lines)
        size += doc_bytes
    flush()
    return found


def _break(lines: list[str], kind: str, file: Path, offset: int) -> Break:
    if kind == "schema":  # block style: `ipAddress: maybe` is not a boolean (E103)
        idx = next(i for i, line in enumerate(lines) if line.strip() == "ipAddress: true")
        lines[idx] = lines[idx].replace("true", "maybe")
        col = lines[idx].index("maybe") + 1
        return Break("schema error (E103)", "E103", file, offset + idx + 1, col)
    # flow style: a lower-case currency inside `value: {amount: .., currency: ..}` (E310)
    idx = next(i for i, line in enumerate(lines) if "currency:" in line)
    start = lines[idx].index("currency: ") + len("currency: ")
    code = lines[idx][start:start + 3]
    lines[idx] = lines[idx][:start] + code.lower() + lines[idx][start + 3:]
    return Break("rule error in flow map (E310)", "E310", file, offset + idx + 1, start + 1)


def write_per_file(root: Path, n_events: int) -> None:
    """A folder per account: ``account.yaml`` plus one file per event."""
    root.mkdir(parents=True)
    for a in range(-(-n_events // EVENTS_PER_ACCOUNT)):
        (root / account_name(a)).mkdir()
        (root / account_name(a) / "account.yaml").write_text("\n".join(account_doc(a)) + "\n")
    for a, e in event_ids(n_events):
        (root / account_name(a) / f"ev-{e:03d}.yaml").write_text("\n".join(event_doc(a, e)) + "\n")


# ---------------------------------------------------------------------------------------------
# Running.


def convctl() -> list[str]:
    exe = Path(sys.executable).parent / "convctl"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("convctl")
    if found is None:
        sys.exit("convctl is not installed (pip install -e .)")
    return [found]


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    max_rss_mib: float
    exit_code: int
    stdout: str
    stderr: str


def run(args: list[str]) -> Run:
    """Run a child to completion; wall time and its own peak RSS (os.wait4, not the max of all)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        rss = usage.ru_maxrss / 1024  # KiB on Linux
        cpu = usage.ru_utime + usage.ru_stime
        return Run(seconds, cpu, rss, proc.returncode, out.read().decode(), err.read().decode())


FLOOR_SCRIPT = """
import sys, time, pathlib, yaml
files = sorted(pathlib.Path(sys.argv[1]).rglob("*.yaml"))
start = time.process_time()
for path in files:
    for _ in yaml.parse(path.read_text(), Loader=yaml.CLoader):
        pass
print(time.process_time() - start)
"""


def event_floor(folder: Path) -> float:
    """CPU seconds of libyaml's event stream alone over every file of ``folder`` (read + parse,
    no data built; a fresh process, startup not counted): the floor a loader cannot beat."""
    done = subprocess.run([sys.executable, "-c", FLOOR_SCRIPT, str(folder)], check=True,
                          text=True, stdout=subprocess.PIPE)
    return float(done.stdout)


@dataclass
class Timed:
    """Every run of one case, each with the event-stream floor measured just before it."""

    runs: list[Run]
    floors: list[float]

    def wall(self) -> str:
        return _stats.spread([r.seconds for r in self.runs])

    def cpu(self) -> str:
        return _stats.spread([r.cpu_seconds for r in self.runs])

    def floor(self) -> str:
        return _stats.spread(self.floors)

    def ratio(self) -> str:
        """Each run's CPU over the floor measured beside it."""
        return _stats.ratio_spread([r.cpu_seconds for r in self.runs], self.floors)

    def best(self) -> Run:
        return min(self.runs, key=lambda r: r.seconds)


def timed(args: list[str], folder: Path, runs: int, check: Callable[[Run], None]) -> Timed:
    out = Timed([], [])
    for _ in range(runs):
        out.floors.append(event_floor(folder))
        result = run(args)
        check(result)
        out.runs.append(result)
    return out


def time_validate(folder: Path, runs: int) -> Timed:
    def valid(result: Run) -> None:
        if result.exit_code != 0:
            sys.exit(f"validate {folder} exited {result.exit_code}, expected 0 (a valid set):\n"
                     f"{result.stderr[-2000:]}{result.stdout[-500:]}")

    return timed([*convctl(), "validate", str(folder)], folder, runs, valid)


def check_break(tmp: Path, n_events: int, kind: str) -> tuple[str, str]:
    folder = tmp / f"broken-{kind}-{n_events}"
    expected = write_packed(folder, n_events, broken=kind)
    assert expected is not None
    result = run([*convctl(), "validate", str(folder), "--format", "json"])
    diags = json.loads(result.stdout)
    errors = [d for d in diags if d["severity"] == "error"]
    want = f"{expected.file}:{expected.line}:{expected.col}"
    got = ", ".join(f"{d['file']}:{d['line']}:{d['col']} {d['code']}" for d in errors)
    ok = (result.exit_code == 1 and len(errors) == 1 and errors[0]["code"] == expected.code
          and (errors[0]["file"], errors[0]["line"], errors[0]["col"])
          == (str(expected.file), expected.line, expected.col))
    verdict = "exact" if ok else "WRONG"
    print(f"  {expected.label}: expected {expected.code} at {want}; got {got or 'nothing'}"
          f" -> {verdict} ({result.seconds:.2f} s)")
    if not ok:
        sys.exit(1)
    return expected.label, f"{expected.code} at line {expected.line}, col {expected.col}: exact"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,50000",
                        help="comma-separated event counts (multiples of 100)")
    parser.add_argument("--runs", type=int, default=_stats.MIN_RUNS,
                        help="runs per case (at least 3; --quick: 1)")
    parser.add_argument("--quick", action="store_true", help="2,000 events, one run (smoke test)")
    args = parser.parse_args(argv)
    _stats.compiled()  # children load cached bytecode, as an installed copy does
    sizes = [2000] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    runs = _stats.runs(args.runs, args.quick)
    print(f"convctl validate, whole process; {_stats.machine()}")
    rows: list[tuple[int, str, int, Timed]] = []
    with tempfile.TemporaryDirectory(prefix="convctl-bench-") as name:
        tmp = Path(name)
        for n in sizes:
            for layout in ("packed", "per-file"):
                folder = tmp / f"{layout}-{n}"
                if layout == "packed":
                    write_packed(folder, n)
                else:
                    write_per_file(folder, n)
                files = sum(1 for _ in folder.rglob("*.yaml"))
                result = time_validate(folder, runs)
                rows.append((n, layout, files, result))
                best = result.best()
                print(f"  {n:>6} events {layout:<8} {files:>6} files: {result.wall()} s "
                      f"(CPU {result.cpu()} s, floor {result.floor()} s: {result.ratio()}) "
                      f"{best.max_rss_mib:6.0f} MiB  [{best.stdout.strip()}]", flush=True)
                shutil.rmtree(folder)
        n_break = sizes[0]
        print(f"broken event in the packed set of {n_break} events:")
        checks = [check_break(tmp, n_break, kind) for kind in ("schema", "rule")]
    print()
    print(f"min / median / max of {runs} run(s); floor: libyaml's event stream alone over the "
          "same files, measured before each run; load at the end: " + _stats.load())
    print()
    print("| events | layout | files | wall time | CPU time | floor (CPU) | CPU / floor | "
          "events/s (best) | peak RSS |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, layout, files, result in rows:
        best = result.best()
        print(f"| {n:,} | {layout} | {files:,} | {result.wall()} s | {result.cpu()} s | "
              f"{result.floor()} s | {result.ratio()} | {n / best.seconds:,.0f} | "
              f"{best.max_rss_mib:.0f} MiB |")
    for label, outcome in checks:
        print(f"positions ({label}, {n_break:,} events): {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
