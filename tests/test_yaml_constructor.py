"""The seed loaders' plain constructor gives exactly what PyYAML's own constructor gives: the
same values, the same shared objects for aliases, and for anything it does not handle (merges,
other tags, repeated keys, bad values) the very same error."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from feedserver.load import yaml_loader

LOADERS = [yaml_loader.YamlLoader, yaml_loader.PurePythonLoader]


def _generic(base: Any) -> Any:
    """The same loader with PyYAML's constructor only."""

    class Generic(base):  # type: ignore[misc]
        def construct_document(self, node: Any) -> Any:
            return yaml.constructor.BaseConstructor.construct_document(self, node)

    return Generic


def outcome(text: str, loader: Any) -> str:
    """What loading gives, as text: the value's repr, or the error's type and message."""
    try:
        return repr(yaml.load(text, Loader=loader))
    except Exception as error:
        return f"{type(error).__name__}: {error}"


def assert_same(text: str) -> None:
    for loader in LOADERS:
        assert outcome(text, loader) == outcome(text, _generic(loader)), text


TRICKY = [
    "title: a\ntitle: b\n",  # a repeated key
    "base: &b {x: 1}\nitem:\n  <<: *b\n  x: 2\n",  # a merge, overridden
    "item:\n  <<: [{a: 1}, {b: 2}]\n",
    "a: &x [1, 2]\nb: *x\nc: *x\n",  # aliases share one list
    "a: &x [1, *x]\n",  # a list that contains itself
    "a: &m {k: *m}\n",
    "when: 2024-02-30\n",
    "when: 2024-02-03 10:00:00+25:00\n",
    "n: !!int 0x\n",
    "f: !!float abc\n",
    "b: !!bool maybe\n",
    "x: !custom 1\n",
    "s: !!set {a, b}\n",
    "o: !!omap [{a: 1}]\n",
    "bin: !!binary aGVsbG8=\n",
    "bad: !!binary '!!!'\n",
    "nested:\n  deeper: {when: 2024-13-01}\nlater: !!int x\n",  # two bad values: which first
    "[1, 2]: list key\n",
    "{a: 1}: mapping key\n",
    "yes: no\non: off\ntrue: false\n",
    "date: 2024-01-02\nstamp: 2024-01-02T03:04:05Z\nnull: ~\nempty:\n",
    "n: .nan\ni: -.inf\nh: 0x1F\no: 0o17\ns: 1_000\ne: 1e3\n",
    "text: !!str 123\nnum: !!int '42'\nflt: !!float '1.5'\n",
    "? complex\n: value\n",
    "- just\n- a list\n",
    "plain scalar\n",
    "laughs: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_documents_load_as_pyyaml_loads_them(text: str) -> None:
    assert_same(text)


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.dates()
    | st.datetimes(timezones=st.just(datetime.UTC))
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(values)
def test_any_safe_document_loads_as_pyyaml_loads_it(value: Any) -> None:
    assert_same(yaml.safe_dump({"value": value, "again": value}))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab: -\n[]{},&*!<>#'\"|~.0123456789tTfFx", max_size=60))
def test_any_text_loads_as_pyyaml_loads_it(text: str) -> None:
    assert_same(text)


@pytest.mark.parametrize("loader", LOADERS)
def test_an_alias_shares_its_anchor_s_object(loader: Any) -> None:
    """So that a document of aliases to aliases ("billion laughs") stays small in memory."""
    laughs = "a: &a [x, x]\n" + "".join(
        f"{chr(98 + n)}: &{chr(98 + n)} [*{chr(97 + n)}, *{chr(97 + n)}]\n" for n in range(20)
    )
    data = yaml.load(laughs, Loader=loader)
    assert data["u"][0] is data["u"][1] is data["t"]
    assert data["b"][0] is data["a"]
