"""Documents per second of the YAML loaders we could build the manifest parser on.

All parse the same multi-document text (the manifests ``validate_scale.py`` generates: accounts
and a mix of form and lifecycle events, 10,000 documents by default):

* ruamel.yaml round-trip loader (``typ="rt"``): positions on every node, comments kept;
* ruamel.yaml safe loader with the C parser (``typ="safe", pure=False``; C only when
  ``ruamel.yaml.clib`` is installed, otherwise it silently falls back to Python);
* PyYAML ``CSafeLoader`` (``yaml.load_all``): plain data, no positions;
* rapidyaml (``ryml``, C++): parse, emit the tree as JSON, ``orjson.loads`` it: plain data, no
  positions, no checks (its JSON loses scalar styles: ``yes`` and ``'yes'`` both come back "yes");
* ours, ``reconciler.adapters.yamlparse.parse_documents``: what ``convctl`` uses. A large plain
  file is read by rapidyaml when our checks prove its data is the lean pass's
  (``adapters/yamlfast.py``); otherwise plain data built straight from libyaml's event stream,
  with our refusals (tags, merge keys, ...). Positions are parsed when a diagnostic needs them;
* ours without rapidyaml: the lean pass over libyaml's events (``adapters/yamllean.py``);
* the floor: libyaml's event stream alone (``yaml.parse`` with the C loader, no data built).

Each loader runs 3 times (min / median / max); the ratio to the floor is taken per run, the floor
measured just before each run.

    python bench/yaml_parsers.py                # 10,000 documents
    python bench/yaml_parsers.py --docs 2000    # fewer
    python bench/yaml_parsers.py --quick        # 300 documents, one run (smoke test)
"""

from __future__ import annotations

import argparse
import gc
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _stats
from validate_scale import documents_text


def ruamel_rt(text: str) -> int:
    from ruamel.yaml import YAML

    return sum(1 for _ in YAML(typ="rt").load_all(io.StringIO(text)))


def ruamel_safe_c(text: str) -> int:
    from ruamel.yaml import YAML

    return sum(1 for _ in YAML(typ="safe", pure=False).load_all(io.StringIO(text)))


def pyyaml_csafe(text: str) -> int:
    import yaml

    return sum(1 for _ in yaml.load_all(text, Loader=yaml.CSafeLoader))


def rapidyaml_json(text: str) -> int:
    import orjson
    import ryml  # type: ignore[import-untyped]

    tree = ryml.parse_in_arena(text.encode())
    docs = orjson.loads(ryml.emit_json(tree, tree.root_id()))
    return len(docs)


def lean(text: str) -> int:
    from reconciler.adapters.yamllean import lean_documents
    from reconciler.adapters.yamlparse import positioned_documents

    docs = lean_documents(text, "bench.yaml", positioned_documents)
    assert docs is not None
    return len(docs)


def ours(text: str) -> int:
    from reconciler.adapters.yamlparse import parse_documents
    from reconciler.diagnostics import Diagnostics

    diags = Diagnostics()
    docs = parse_documents(text, "bench.yaml", diags)
    assert not diags.has_errors, diags.sorted()[:3]
    return len(docs)


def event_floor(text: str) -> int:
    import yaml

    return sum(isinstance(e, yaml.DocumentStartEvent)
               for e in yaml.parse(text, Loader=yaml.CLoader))


def has_ruamel_c() -> bool:
    try:
        import _ruamel_yaml  # noqa: F401  (the C extension of ruamel.yaml.clib)
    except ImportError:
        return False
    return True


PARSERS: dict[str, Callable[[str], int]] = {
    "ruamel.yaml round-trip (typ='rt')": ruamel_rt,
    "ruamel.yaml safe, C parser (pure=False)": ruamel_safe_c,
    "PyYAML CSafeLoader (load_all)": pyyaml_csafe,
    "rapidyaml parse + emit_json + orjson.loads": rapidyaml_json,
    "convctl yamlparse.parse_documents (rapidyaml tier)": ours,
    "convctl lean pass alone (libyaml events)": lean,
}


def timed(parse: Callable[[str], int], text: str) -> tuple[float, int]:
    """Seconds and documents of one run. The collector is paused as ``load`` does."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        count = parse(text)
        return time.perf_counter() - start, count
    finally:
        gc.enable()


def measure(parse: Callable[[str], int], text: str, runs: int) -> tuple[list[float],
                                                                        list[float], int]:
    """Every run's seconds, and the floor's seconds measured just before it."""
    seconds, floors, count = [], [], 0
    for _ in range(runs):
        floors.append(timed(event_floor, text)[0])
        took, count = timed(parse, text)
        seconds.append(took)
    return seconds, floors, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000, help="documents (default 10,000)")
    parser.add_argument("--runs", type=int, default=_stats.MIN_RUNS,
                        help="runs per loader (at least 3)")
    parser.add_argument("--quick", action="store_true", help="300 documents, one run")
    args = parser.parse_args(argv)
    n_docs, runs = (300 if args.quick else args.docs), _stats.runs(args.runs, args.quick)
    # n_docs documents in all: accounts (1 per 100 events) + events
    n_events = n_docs * 100 // 101
    text = documents_text(n_events)
    total = text.count("---\n")
    print(f"YAML loaders on {total:,} documents ({len(text) / 1e6:.1f} MB); {_stats.machine()}; "
          f"ruamel.yaml.clib C extension: {'yes' if has_ruamel_c() else 'NO'}")
    print()
    print(f"min / median / max of {runs} run(s); each run over the floor measured just before it")
    print()
    print("| loader | time | documents/s (best) | vs the event-stream floor |")
    print("| --- | ---: | ---: | ---: |")
    warm = documents_text(1)
    for name, parse in PARSERS.items():
        parse(warm)  # imports and first-call set-up are not timed
        seconds, floors, count = measure(parse, text, runs)
        if count != total:
            sys.exit(f"{name} read {count} documents, expected {total}")
        print(f"| {name} | {_stats.spread(seconds)} s | {count / min(seconds):,.0f} | "
              f"{_stats.ratio_spread(seconds, floors)} |", flush=True)
    print(f"\nload at the end: {_stats.load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
