"""The rapidyaml tier (``adapters/yamlfast``) against the lean pass it stands in front of.

Whatever text it is given, the fast tier either declines (None) or returns exactly the lean
pass's data, types and key order included (compared by ``repr``: ``1``, ``"1"``, ``True`` and
``1.0`` differ); and when the lean pass declines (a tag, a duplicate key, a YAML error...), so
does the fast tier. Checked over every YAML file in the repository, over generated manifest-like
texts with YAML 1.1 look-alikes, and over the same texts mutated (characters inserted, deleted,
swapped: mostly broken YAML). Then, through the real ``convctl``: output identical with and
without rapidyaml, the exact file:line:col of a diagnostic in a fast-read file, and nothing of
ryml's own error printing on a broken file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_loader_equivalence import SEPARATORS, _text, documents, plain_trees

from reconciler.adapters import yamlfast
from reconciler.adapters.yamllean import lean_documents
from reconciler.adapters.yamlparse import positioned_documents

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from validate_scale import account_doc, documents_text, event_doc  # noqa: E402


def lean(text: str) -> str | None:
    docs = lean_documents(text, "m.yaml", positioned_documents)
    return None if docs is None else repr([doc.data for doc in docs])


def fast(text: str) -> str | None:
    data = yamlfast.convert(text)
    return None if data is None else repr(data)


def same_or_declined(text: str) -> bool:
    """The fast tier's result is None or the lean pass's; True when it took the file."""
    got = fast(text)
    if got is not None:
        assert got == lean(text), text
    return got is not None


def test_every_yaml_file_in_the_repository() -> None:
    files = sorted(p for folder in ("tests/data", "manifests", "examples")
                   for p in (ROOT / folder).rglob("*") if p.suffix in (".yaml", ".yml"))
    assert len(files) > 50
    taken = [path for path in files if same_or_declined(path.read_text(encoding="utf-8"))]
    assert len(taken) > len(files) // 3  # the shipped manifests are plain: most go fast


def test_the_bench_manifests_go_fast_with_the_lean_data() -> None:
    text = documents_text(300)
    assert len(text) > yamlfast.MIN_SIZE
    assert same_or_declined(text)
    assert yamlfast.fast_data(text) is not None or yamlfast.threading.active_count() > 1


def test_not_while_another_thread_could_be_writing_to_stderr() -> None:
    """ryml's error printing is silenced on fd 2 for the call: never with other threads about."""
    import threading

    text = documents_text(300)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert yamlfast.fast_data(text) is None
    finally:
        stop.set()
        other.join()
    assert yamlfast.convert(text) is not None


LOOKALIKES = ["yes", "'yes'", '"no"', "~", "'~'", "null", "'null'", "Null", "true", "'true'",
              "True", "1", "'1'", '"-12"', "012", "'012'", "0x1F", "1e3", "'1e3'", "1.5",
              "'1.5'", ".inf", "2024-01-01", "'2024-01-01'", "1:20", "1_000", "+7", "-0",
              "12345678901234567890", "'12345678901234567890'", "=", "'<<'", "]x", "'}x'",
              "@x", "'@x'", "`x", ":x", "?x", "'?x'", "a:b", "[a:]", "{a: }", "[a, ]", "x #c",
              "'a''b'", '"a b"', "é", "'\u00a0x'", "-x", "--- x", "|\n  text", ">-\n  1", "inf",
              "'.inf'", "nan", "-inf"]
lookalike_trees = st.recursive(
    st.sampled_from(LOOKALIKES),
    lambda kids: st.tuples(st.just(""), st.lists(kids, max_size=3)
                           | st.dictionaries(st.sampled_from(["a", "kind", "no", "01", "~",
                                                              "'x'", "spec"]), kids, max_size=3)
                           .map(lambda d: tuple(d.items())))
    | st.tuples(st.just(""), st.lists(kids, min_size=1, max_size=3), st.just("flow")),
    max_leaves=10)
PLAIN_SEPARATORS = ["---\n", "--- \n", *SEPARATORS]  # mostly plain: the tier's case
plain_texts = st.lists(st.tuples(plain_trees | lookalike_trees,
                                 st.sampled_from(PLAIN_SEPARATORS)),
                       min_size=1, max_size=4).map(_text)
texts = plain_texts | documents.map(_text)
NOISE = [*"\t\r\n :-?,[]{}#&*!|>'\"%@`~\\<=.0", "  ", "---\n", "...\n", "\u2028", "\x85", "\ufeff",
         "\x01", "\xa0", "a", "1"]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(plain_texts)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.sampled_from(NOISE))
        if kind == "insert":
            text = text[:at] + piece + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 3)):]
        else:
            text = text[:at] + piece + text[at + 1:]
    return text


@settings(max_examples=400)
@given(texts)
@example("a: 1\na: 2\n")
@example("- {a: 1, a: 2}\n")
@example("a: ]x\n")
@example("a: [x, [y, [z]]]\n" + "b: " + "[" * 40 + "]" * 40 + "\n")
def test_generated_texts_read_as_the_lean_pass(text: str) -> None:
    same_or_declined(text)


@settings(max_examples=600)
@given(mutated())
def test_mutated_texts_read_as_the_lean_pass_or_declined(text: str) -> None:
    same_or_declined(text)


@contextmanager
def slices_of(size: int) -> Iterator[None]:
    """Read large streams ``size`` bytes of YAML at a time (``yamlfast.CHUNK_BYTES``)."""
    saved, yamlfast.CHUNK_BYTES = yamlfast.CHUNK_BYTES, size
    try:
        yield
    finally:
        yamlfast.CHUNK_BYTES = saved


def sliced_or_declined(text: str) -> None:
    """Read a slice of documents at a time, ryml's JSON is its JSON of the whole, or None."""
    raw = text.encode("utf-8", "surrogatepass")
    with slices_of(1):
        chunks = yamlfast._chunks(raw)
        assert b"".join(chunks) == raw
        with yamlfast._quiet_stderr():
            joined = yamlfast._json_of_chunks(yamlfast._ryml(), chunks)
            whole = yamlfast._json_of(yamlfast._ryml(), raw)
    if joined is not None:
        assert whole == (True, joined), text


@settings(max_examples=400)
@given(texts | mutated())
@example("a: 1\n---\nb: 2\n--- 3\n---\n--- \n----\n---x\n--- [1, 2]\n")
@example("a: 'x\n--- y'\n---\nb: 1\n")
@example("a: x\n--- y\n---\nb: 1\n")
@example("---\n---\n--- null\n---\na: ~\n")
def test_a_stream_read_a_slice_at_a_time_is_the_stream_read_at_once(text: str) -> None:
    sliced_or_declined(text)


@settings(max_examples=300)
@given(mutated())
def test_mutated_texts_read_in_slices_as_the_lean_pass_or_declined(text: str) -> None:
    with slices_of(1):
        same_or_declined(text)


def test_a_large_stream_is_read_in_slices_with_the_lean_data() -> None:
    text = documents_text(3000)
    raw = text.encode()
    assert len(yamlfast._chunks(raw)) > 3
    sliced_or_declined(text)
    with yamlfast._quiet_stderr():
        assert yamlfast._json_of_chunks(yamlfast._ryml(), yamlfast._chunks(raw)) is not None
    assert same_or_declined(text)


def test_hand_written_differences_are_declined() -> None:
    """What ryml reads otherwise (or accepts where libyaml refuses), each alone in a file."""
    cases = ["a: yes\n", "a: ~\n", "a: 0x1F\n", "a: 012\n", "a: 1e3\n", "a: .inf\n",
             "a: 2024-01-01\n", "a: 1\na: 2\n", "--- null\n---\na: 1\n", ": x\n", "a: ]x\n",
             "a: }x\n", "- ]\n", "a: @x\n", "a: `x\n", "[:x]\n", "[?x]\n", "[a:]\n",
             "[1, a:?b]\n", "- [a]   - b\n", "- 'a'  --- \n", "a:\tb\n", "a: x\u2028y\n",
             "a: x\x85y\n", "a: \x01\n", "a: !!str 1\n", "- inf\n", "inf: 1\n", "[nan]\n",
             "a: &x 1\nb: *x\n", "<<: {a: 1}\n", "%YAML 1.1\n---\na: 1\n", "a: 'x\\y'\n",
             "a: 1.5\n", "a: 100000000000000000000000\n", "a: +7\n", "a: " + "[" * 40 + "]" * 40]
    for text in cases:
        assert fast(text) is None, text


def test_quoted_lookalikes_are_kept_as_text() -> None:
    """Quoting is what makes these text; the tier proves it from the JSON or the text."""
    text = "a: '1'\nb: \"yes\"\nc: 'true'\nd: '2024-01-01'\ne: \"~\"\nf: '0x1F'\ng: -0\nh: 7\n"
    assert fast(text) == lean(text) == repr([{"a": "1", "b": "yes", "c": "true",
                                              "d": "2024-01-01", "e": "~", "f": "0x1F",
                                              "g": 0, "h": 7}])


def test_empty_documents_are_skipped_as_the_lean_pass_skips_them() -> None:
    text = "# header\n---\n---\na: 1\n---\n# nothing\n---\nb: [c]\n---\n"
    assert fast(text) == lean(text) == repr([{"a": 1}, {"b": ["c"]}])


def test_every_word_yaml_1_1_types_is_looked_at() -> None:
    """The tier looks closer only at strings that could be typed: every bool and null word."""
    words = [f(w) for w in ("yes", "no", "true", "false", "on", "off", "null")
             for f in (str.lower, str.title, str.upper)]
    for word in words:
        assert yamlfast._TYPED.findall(f'["{word}"]'.encode()) == [word.encode()], word
        assert fast(f"- {word}\n") in (None, lean(f"- {word}\n"))
        assert fast(f"- '{word}'\n") in (None, repr([[word]]))


# --- through the real convctl -------------------------------------------------------------

WITH = "from reconciler.cli.main import main; main()"
WITHOUT_RYML = "import sys; sys.modules['ryml'] = None; " + WITH  # as if no wheel: ImportError


def convctl(code: str, *args: str, cwd: Path) -> tuple[int, str, str]:
    env = {**os.environ, "NO_COLOR": "1", "CONVCTL_STATE": f"sqlite:///{cwd / 'state.db'}",
           "META_TOKEN_0": "t", "META_TOKEN_1": "t"}
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def packed(folder: Path, events: int, broken: tuple[int, str, str] | None = None) -> Path:
    """One account and ``events`` events in one file (well above the fast tier's threshold),
    the event ``broken[0]``'s line containing ``broken[1]`` replaced by ``broken[2]``."""
    lines = ["---", *account_doc(0)]
    for e in range(events):
        doc = event_doc(0, e)
        if broken and broken[0] == e:
            doc = [line.replace(broken[1], broken[2]) for line in doc]
        lines += ["---", *doc]
    folder.mkdir()
    (folder / "all.yaml").write_text("\n".join(lines) + "\n")
    return folder / "all.yaml"


def test_validate_and_plan_print_the_same_with_and_without_rapidyaml(tmp_path: Path) -> None:
    path = packed(tmp_path / "m", 100)
    assert yamlfast.convert(path.read_text()) is not None
    for args in (["validate", "m"], ["plan", "m"]):
        fast_run = convctl(WITH, *args, cwd=tmp_path)
        assert fast_run == convctl(WITHOUT_RYML, *args, cwd=tmp_path), args
        assert fast_run[0] == 0, fast_run


def test_a_diagnostic_in_a_fast_read_file_has_the_exact_place(tmp_path: Path) -> None:
    path = packed(tmp_path / "m", 100, broken=(96, "currency: ", "currency: e"))
    text = path.read_text()
    assert yamlfast.convert(text) is not None
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "currency: e" in row)
    col = text.splitlines()[line - 1].index("currency: e") + len("currency: ") + 1
    code, out, err = convctl(WITH, "validate", "m", cwd=tmp_path)
    assert code == 1
    assert f"m/all.yaml:{line}:{col}" in out + err
    assert (code, out, err) == convctl(WITHOUT_RYML, "validate", "m", cwd=tmp_path)


@pytest.mark.parametrize("damage", [("currency: ", "currency: [EUR"), ("facebookEvent", "\tx")])
def test_a_broken_file_shows_our_diagnostic_and_nothing_of_ryml(
        tmp_path: Path, damage: tuple[str, str]) -> None:
    packed(tmp_path / "m", 100, broken=(60, *damage))
    result = convctl(WITH, "validate", "m", cwd=tmp_path)
    assert result[0] == 1 and "E002" in result[1] + result[2]
    assert "ERROR" not in result[2] and "ryml" not in result[2], result[2]
    assert result == convctl(WITHOUT_RYML, "validate", "m", cwd=tmp_path)

