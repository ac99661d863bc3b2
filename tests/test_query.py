"""The query parser on its own (feedserver/query.py): every parameter, its bounds, the message
that names it, and the canonical order and encoding that cache keys and links are made from."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from feedserver.query import (
    KNOWN_PARAMETERS,
    MAX_PAGE,
    MAX_QUALITY,
    MAX_QUERY_CHARS,
    MAX_SELECTION_CHARS,
    MAX_SELECTION_VALUES,
    BadParameter,
    FeedQuery,
    Selection,
    canonical_pairs,
    encode_query,
    known_parameters,
    parameter_lists,
    parse_feed_query,
    parse_selection,
)

FEED_LIMIT, MAX_FEED_LIMIT = 20, 100


def parse(**args: str | list[str]) -> FeedQuery:
    lists = {name: [value] if isinstance(value, str) else value for name, value in args.items()}
    return parse_feed_query(lists, FEED_LIMIT, MAX_FEED_LIMIT)


def refusal(name: str, value: str) -> str:
    """The message of the BadParameter that one value of one parameter raises."""
    with pytest.raises(BadParameter) as raised:
        if name in ("topic", "provider", "exclude_topic", "exclude_provider"):
            parse_selection({name: [value]})
        else:
            parse(**{name: value})
    assert raised.value.name == name
    return str(raised.value)


def test_no_parameters_give_the_defaults() -> None:
    assert parse() == FeedQuery(FEED_LIMIT, 1, (), None, "date")
    assert not parse().filtered
    assert parse_selection({}) == Selection()
    assert not parse_selection({})


@pytest.mark.parametrize(
    ("name", "text", "number"),
    [
        ("limit", "1", 1),
        ("limit", str(MAX_FEED_LIMIT), MAX_FEED_LIMIT),
        ("limit", " 7 ", 7),
        ("page", "1", 1),
        ("page", str(MAX_PAGE), MAX_PAGE),
        ("page", "0003", 3),
    ],
)
def test_limit_and_page_take_whole_numbers_within_their_bounds(
    name: str, text: str, number: int
) -> None:
    assert getattr(parse(**{name: text}), name) == number


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("limit", "0"),
        ("limit", str(MAX_FEED_LIMIT + 1)),
        ("limit", "-1"),
        ("limit", "1.5"),
        ("limit", "٣"),  # a digit of another script
        ("limit", ""),
        ("limit", "9" * 13),
        ("page", "0"),
        ("page", str(MAX_PAGE + 1)),
        ("page", "two"),
    ],
)
def test_limit_and_page_out_of_bounds_are_refused_by_name(name: str, text: str) -> None:
    maximum = MAX_FEED_LIMIT if name == "limit" else MAX_PAGE
    assert refusal(name, text) == (
        f"bad value for query parameter '{name}': must be a whole number from 1 to {maximum}"
    )


def test_q_is_split_into_distinct_casefolded_words() -> None:
    query = parse(q="  Cloud AI cloud  Straße ")
    assert query.words == ("cloud", "ai", "strasse")
    assert query.filtered
    assert parse(q="").words == () and parse(q="   ").words == ()
    assert parse(q="x" * MAX_QUERY_CHARS).words == ("x" * MAX_QUERY_CHARS,)
    assert refusal("q", "x" * (MAX_QUERY_CHARS + 1)) == (
        f"bad value for query parameter 'q': must be at most {MAX_QUERY_CHARS} characters"
    )


@pytest.mark.parametrize(
    ("text", "value"), [("2", 2.0), ("0.5", 0.5), (" 3.25 ", 3.25), (str(MAX_QUALITY), MAX_QUALITY)]
)
def test_min_quality_takes_a_plain_decimal_above_zero(text: str, value: float) -> None:
    query = parse(min_quality=text)
    assert query.min_quality == value
    assert query.filtered


@pytest.mark.parametrize(
    "text", ["0", "0.0", "-1", str(MAX_QUALITY + 1), "inf", "nan", "1e3", "1_0", "", "1.1234567"]
)
def test_min_quality_out_of_bounds_or_not_plain_is_refused_by_name(text: str) -> None:
    assert refusal("min_quality", text) == (
        "bad value for query parameter 'min_quality': "
        f"must be a number above 0 and at most {MAX_QUALITY}"
    )


def test_sort_takes_one_of_three_orders() -> None:
    assert parse(sort="date") == parse()
    assert parse(sort="heat").sort == "heat" and parse(sort="heat").filtered
    assert parse(sort="quality").sort == "quality"
    assert parse(sort="").sort == "date"  # an empty value is no value
    for text in ("Heat", "newest", "date "):
        assert refusal("sort", text) == (
            "bad value for query parameter 'sort': must be one of date, heat, quality"
        )


@pytest.mark.parametrize("name", ["limit", "page", "q", "min_quality", "sort"])
def test_a_parameter_given_twice_is_refused_by_name(name: str) -> None:
    with pytest.raises(BadParameter, match=f"'{name}': given more than once") as raised:
        parse(**{name: ["1", "1"]})
    assert raised.value.name == name


def test_selection_reads_keys_names_and_domains_of_each_kind() -> None:
    selection = parse_selection(
        {
            "topic": ["Microsoft AI", "cloud"],
            "provider": ["www.TechCrunch.com"],
            "exclude_topic": [" Robotics "],
            "exclude_provider": ["geekwire.com"],
        }
    )
    assert selection == Selection(
        frozenset({"microsoft-ai", "cloud"}),
        frozenset({"techcrunch.com"}),
        frozenset({"robotics"}),
        frozenset({"geekwire.com"}),
    )
    assert selection


@pytest.mark.parametrize("name", ["topic", "exclude_topic", "provider", "exclude_provider"])
def test_selection_values_must_name_something_and_are_bounded(name: str) -> None:
    what = "topic" if name.endswith("topic") else "provider"
    message = (
        f"bad value for query parameter '{name}': "
        f"must name a {what} (at most {MAX_SELECTION_CHARS} chars)"
    )
    assert refusal(name, "") == message
    assert refusal(name, "a" * (MAX_SELECTION_CHARS + 1)) == message
    values = [f"t{n}.example" for n in range(MAX_SELECTION_VALUES)]
    assert parse_selection({name: values})  # as many values as allowed
    with pytest.raises(BadParameter, match=f"'{name}': may be given at most 20 times"):
        parse_selection({name: [*values, "one.more.example"]})


def test_selection_canonical_query_is_sorted_whatever_the_order_asked() -> None:
    one = parse_selection({"provider": ["b.example", "a.example"], "topic": ["Zeta", "alpha"]})
    other = parse_selection({"topic": ["alpha", "zeta"], "provider": ["a.example", "b.example"]})
    assert one == other
    assert one.canonical_query() == [
        ("topic", "alpha"),
        ("topic", "zeta"),
        ("provider", "a.example"),
        ("provider", "b.example"),
    ]


def test_known_parameters_keep_the_canonical_order_and_drop_the_rest() -> None:
    raw = "utm_source=x&sort=heat&topic=b&q=a&topic=a&limit=5&callback=f&page=2&min_quality=1"
    assert known_parameters(raw) == (
        ("limit", "5"),
        ("page", "2"),
        ("q", "a"),
        ("min_quality", "1"),
        ("sort", "heat"),
        ("topic", "b"),  # repeated names stay in the order sent
        ("topic", "a"),
    )
    assert known_parameters("") == ()
    assert known_parameters("callback=x&_=1&LIMIT=5") == ()  # names are case-sensitive
    assert [name for name, _ in canonical_pairs((n, "") for n in reversed(KNOWN_PARAMETERS))] == (
        list(KNOWN_PARAMETERS)
    )


def test_known_parameters_decode_utf8_escapes_and_keep_blank_values() -> None:
    # WSGI gives the query as latin-1 text of the raw bytes.
    raw = b"q=caf%C3%A9+cr%C3%A8me&limit=&page".decode("latin-1")
    assert known_parameters(raw) == (("limit", ""), ("page", ""), ("q", "café crème"))
    words = parse_feed_query(parameter_lists(known_parameters("q=caf%C3%A9")), 20, 100).words
    assert words == ("café",)
    with pytest.raises(BadParameter, match="'limit'"):  # kept blank, so refused, not ignored
        parse_feed_query(parameter_lists(known_parameters(raw)), 20, 100)


def test_encode_query_escapes_reserved_characters_and_writes_spaces_as_plus() -> None:
    pairs = (("q", "a b&c=d/é"), ("topic", "x"), ("topic", "y"))
    assert encode_query(pairs) == "q=a+b%26c%3Dd%2F%C3%A9&topic=x&topic=y"
    assert known_parameters(encode_query(pairs).encode().decode("latin-1")) == pairs
    assert encode_query(()) == ""


def test_parameter_lists_group_repeated_names() -> None:
    pairs = (("limit", "5"), ("topic", "a"), ("topic", "b"))
    assert parameter_lists(pairs) == {"limit": ["5"], "topic": ["a", "b"]}


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("limit=0", "limit"),
        ("page=x", "page"),
        ("q=" + "x" * (MAX_QUERY_CHARS + 1), "q"),
        ("min_quality=inf", "min_quality"),
        ("sort=random", "sort"),
        ("topic=", "topic"),
        ("limit=1&limit=2", "limit"),
    ],
)
def test_a_feed_answers_400_naming_the_parameter(
    client: FlaskClient, query: str, name: str
) -> None:
    response = client.get(f"/feed.rss?{query}")
    assert response.status_code == 400
    assert f"bad value for query parameter '{name}'" in response.get_data(as_text=True)
