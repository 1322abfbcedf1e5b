"""The event-stream loader against the node-tree loader it replaced (``node_loader``): for
generated manifest-like YAML, hostile bits included (YAML 1.1 look-alikes, tags, anchors and
aliases, duplicate and complex keys, merge keys, empty documents, syntax errors), both give the
same documents (data, every position, refused or not) and the same diagnostics, word for word.
"""

from __future__ import annotations

from typing import Any

import node_loader
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.adapters.yamlparse import parse_documents
from reconciler.diagnostics import Diagnostics

KEYS = ["apiVersion", "kind", "metadata", "name", "spec", "account", "trigger", "stages",
        "labels", "value", "amount", "no", "01", "=", "<<", "~", "'q'", '"kind"', "&k key",
        "*k", "[a]", "!!int 3", "!!str x", "!!python/name:os.system k", "!k x", "k2"]
SCALARS = ["acme", "ConversionEvent", "convctl/v1", "'04412345'", '"yes"', "4412345", "-12",
           "+7", "04412345", "0o17", "0x1F", "0b101", "1:20", "1_000", "1.5", "1e3", ".inf",
           "true", "no", "on", "~", "null", "''", "2024-01-01", "=", "<<", "!!str 12",
           "!!int 12", "!!int x", "!!float 1", "!!bool yes", "!!null ''", "!!binary aGk=",
           "!!python/object:os.system x", "!foo x", "! x", "!!timestamp 2024-01-01",
           "&a x", "&b 5", "*a", "*b", "*c", "opportunity", "lead", "0000002a-0001-4bd7",
           "Demo booked", "|\n  text", '"a\\tb"']
PREFIXES = ["", "", "", "&c ", "&a ", "!!map ", "!!seq ", "!x ", "! "]


def flow(tree: Any) -> str:
    if isinstance(tree, str):
        return tree if "\n" not in tree else "x"
    prefix, items = tree[:2]
    if isinstance(items, list):
        return prefix + "[" + ", ".join(flow(i) for i in items) + "]"
    return prefix + "{" + ", ".join(f"{k}: {flow(v)}" for k, v in items) + "}"


def block(tree: Any, indent: int) -> tuple[str, list[str]]:
    """``tree`` in block style: what follows ``key: `` or ``- ``, and the lines below it.

    A tree is a scalar's text, or (node properties, items[, "flow"]): a list of items is a
    sequence, a tuple of (key, value) pairs a mapping.
    """
    pad = " " * indent
    if isinstance(tree, str):
        if "\n" in tree:  # a literal block scalar
            head, text = tree.split("\n")
            return head, [pad + text.strip()]
        return tree, []
    prefix, items = tree[:2]
    if len(tree) == 3 or not items:
        return flow(tree), []
    lines = []
    for item in items:
        key, value = ("-", item) if isinstance(items, list) else (f"{item[0]}:", item[1])
        head, below = block(value, indent + 2)
        lines += [f"{pad}{key} {head}".rstrip(), *below]
    return prefix.strip(), lines


def container(kids: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    pairs = st.lists(st.tuples(st.sampled_from(KEYS), kids), max_size=4).map(tuple)
    shape = st.tuples(st.sampled_from(PREFIXES), st.lists(kids, max_size=3) | pairs)
    return shape | shape.map(lambda t: (*t, "flow"))


trees = st.recursive(st.sampled_from(SCALARS), container, max_leaves=12)


def render(tree: Any) -> str:
    head, lines = block(tree, 0)
    return "\n".join(([head] if head else []) + lines) + "\n"


SEPARATORS = ["---\n", "---\n# nothing here\n---\n", "...\n---\n", "--- \n"]
documents = st.lists(st.tuples(trees, st.sampled_from(SEPARATORS)), min_size=1, max_size=3)


def _text(docs: list[tuple[Any, str]]) -> str:
    return "".join(sep + render(tree) for tree, sep in docs)


def _result(parse: Any, text: str) -> tuple[list[Any], list[Any]]:
    diags = Diagnostics()
    docs = parse(text, "m.yaml", diags)
    return ([(repr(d.data), d.source.values, d.source.keys, d.refused) for d in docs],
            [(d.code, str(d.location), d.message) for d in diags])


def _same(text: str) -> None:
    assert _result(parse_documents, text) == _result(node_loader.parse_documents, text), text


@settings(max_examples=300)
@given(documents)
@example([(("", (("kind", "&a x"), ("name", "*a"), ("labels", ("&l ", (("again", "*l"),))))),
           "---\n")])
@example([(("", (("a", ("&x ", (("b", ("", (("c", "*x"),))),))),)), "---\n")])
def test_same_documents_positions_and_diagnostics(docs: list[tuple[Any, str]]) -> None:
    _same(_text(docs))


def test_hand_written_hostile_cases() -> None:
    cases = [
        "a: &x 1\nb: &x 2\n",  # duplicate anchor
        "a: *y\n",  # undefined alias
        "a: &a [*a]\n",  # recursive alias
        "x: &a {deep: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]], y: *a}\n",
        "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        "f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",  # a billion laughs
        "kind: Account\nmetadata: {name: acme}\na: 1\na: 2\n",  # refused, identity kept
        "a: 1\na: 2\nb: *zz\n",  # a YAML error later in a refused document wins
        # the identity of a refused document: aliases followed, the last duplicate wins
        "&r {metadata: *r, name: n, kind: K, kind: !!int 5, a: 1, a: 2}\n",
        "kind: &k [*k]\nspec: &m {name: x}\nmetadata: *m\n? [kind]\n: y\n",
        "kind: A\n*q : 1\n", "- kind\n- x\n- x: !!python/object x\n",
        "<<: {a: 1}\n", "a: {'<<': 1, b: <<, c: =, =: d}\n",
        "? [a]\n: 1\n", "? &k [a]\n: 1\nb: *k\n", "&k a: 1\n*k : 2\n",
        "- " * 70 + "x\n", "--- &e\n---\n!!null ''\n---\n'' \n---\n~\n",
        "%TAG !e! tag:example.com,2000:\n--- !e!x\nkind: X\n", "a: 1\n- b\n", "a:\tb\n",
        "é: ü\nkind: &k [*k]\n", "x: " + "[" * 1100 + "]" * 1100 + "\n",
    ]
    for text in cases:
        _same(text)


PLAIN_KEYS = ["apiVersion", "kind", "metadata", "name", "spec", "stages", "no", "01", "=", "é"]
PLAIN_SCALARS = ["acme", "convctl/v1", "'04412345'", '"yes"', "4412345", "-12", "1.5", "true",
                 "no", "~", "''", "2024-01-01", "=", "<<", "Demo booked", "1e3"]
plain_trees = st.recursive(
    st.sampled_from(PLAIN_SCALARS),
    lambda kids: st.tuples(st.just(""), st.lists(kids, max_size=3)
                           | st.dictionaries(st.sampled_from(PLAIN_KEYS), kids, max_size=4)
                           .map(lambda d: tuple(d.items())))
    | st.tuples(st.just(""), st.lists(kids, min_size=1, max_size=3), st.just("flow")),
    max_leaves=12)


@settings(max_examples=200)
@given(st.lists(st.tuples(plain_trees, st.sampled_from([s for s in SEPARATORS if s[0] != "."])),
                min_size=1, max_size=4))
def test_plain_files_take_the_lean_path_with_the_same_data_and_positions(
        docs: list[tuple[Any, str]]) -> None:
    """A plain file (no tags, anchors, duplicate keys) is built without positions first; they
    are parsed when first used and are then exactly the positioned builder's."""
    from reconciler.adapters.yamllean import lean_documents
    from reconciler.adapters.yamlparse import positioned_documents

    text = _text(docs)
    lean = lean_documents(text, "m.yaml", positioned_documents)
    assert lean is not None, text
    assert all(d.source._locate is not None for d in lean)  # nothing parsed twice yet
    assert _result(lambda t, f, d: lean, text) == _result(positioned_documents, text) \
        == _result(node_loader.parse_documents, text), text


def test_a_rule_error_in_a_lean_file_points_at_the_exact_place(tmp_path: Any) -> None:
    """The positions of a file read the lean way are parsed on the first diagnostic: exact."""
    from reconciler.adapters.manifests import load

    account = ("apiVersion: convctl/v1\nkind: Account\nmetadata: {name: acme}\nspec:\n"
               "  portalId: 1\n  tier: enterprise\n  forms: [{id: f1, name: F}]\n  facebook:\n"
               "    businessId: '12345'\n    pixelId: '123456789012345'\n"
               "    adAccounts: [act_1]\n    accessToken: {env: META_TOKEN}\n")
    event = ("---\napiVersion: convctl/v1\nkind: ConversionEvent\nmetadata: {{name: e{0}}}\n"
             "spec:\n  account: acme\n  adAccount: act_1\n  trigger:\n    formSubmission:\n"
             "      formId: f1\n      facebookEvent: Lead\n"
             "      value: {{amount: 5, currency: {1}}}\n"
             "      consent: {{property: c, value: 'yes'}}\n")
    (tmp_path / "a.yaml").write_text(account)
    (tmp_path / "e.yaml").write_text("".join(event.format(i, "eur" if i == 2 else "EUR")
                                             for i in range(4)))
    _, diags = load([tmp_path])
    errors = [d for d in diags if d.severity == "error"]
    assert [(d.code, d.location.line, d.location.col) for d in errors] == [("E310", 38, 36)]
