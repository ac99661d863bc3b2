"""A front-matter mapping to an Article. Rules, applied the same way to every field:
- a required field (`title`, `webUrl`, `publishedDateTime`) that is missing or unusable
  rejects the whole file;
- an optional field of the wrong type is dropped and reported, the article is still served;
- a list item of the wrong shape (a topic, image or related entry) is dropped and reported;
- `published` must be the boolean `true` to be served; anything else is reported and withheld.
Every served string is cleaned of what XML cannot carry and of bidirectional controls."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Any

from ..keys import provider_and_note, topic_and_note
from ..messages import kind_of_value
from ..models import Article, Image, Provider, Related, Topic, pack_images, pack_related
from .bodies import body_html
from .records import SeedError

# Characters XML 1.0 cannot carry (and U+FFFE/U+FFFF), and the bidirectional controls that
# can make a title read differently from what it says (U+202E turns the rest of it around),
# removed from every served string.
_UNSAFE_CHARACTERS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
# scheme://[userinfo@]host[:port][/path?query#fragment], with no whitespace anywhere.
_HTTP_URL = re.compile(
    r"https?://(?:[^\s/?#@]*@)?(?:[^\s/?#@:\[\]]+|\[[0-9A-Fa-f:.]+\])(?::\d{0,5})?(?:[/?#]\S*)?",
    re.IGNORECASE,
)


def clean_text(value: str) -> str:
    """Remove characters that XML cannot carry, bidirectional controls and surrounding
    whitespace."""
    if value.isascii() and value.isprintable():  # the common case, checked at C speed
        return value.strip()
    return _UNSAFE_CHARACTERS.sub("", value).strip()


def http_url(value: Any) -> str | None:
    """The value if it is an absolute http(s) URL, else None."""
    if not isinstance(value, str):
        return None
    url = clean_text(value)
    return url if _HTTP_URL.fullmatch(url) else None


def parse_datetime(value: Any) -> datetime | None:
    """A timezone-aware UTC datetime from a YAML timestamp, date or ISO 8601 text."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


# A score beyond this is no score: a 0x-written integer of thousands of digits would even
# fail to print.
_LARGEST_NUMBER = 2**63


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or not -_LARGEST_NUMBER < value < _LARGEST_NUMBER:  # NaN, inf, huge
        return None
    return value


def _short_text(value: Any) -> str | None:
    """Text from a string or a plain number; None for anything else."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # an integer of more digits than Python will print
            return None
    return None


class ArticleFields:
    """The fields of one front-matter mapping, each checked and converted (a required one
    that is unusable raises SeedError; an optional one is dropped with a warning), and the
    Article they make."""

    def __init__(self, data: dict[str, Any], body: str = "") -> None:
        self.data = data
        self.body = body
        self.warnings: list[str] = []

    def required_text(self, field: str) -> str:
        if field not in self.data or self.data[field] is None:
            raise SeedError(f"missing required field '{field}'")
        value = self.data[field]
        text = _short_text(value)
        if text is None:
            raise SeedError(f"'{field}' must be text, got a {kind_of_value(value)}")
        if not text:
            raise SeedError(f"'{field}' is empty")
        return text

    def optional_text(self, field: str) -> str:
        value = self.data.get(field)
        if value is None:
            return ""
        text = _short_text(value)
        if text is None:
            self.warnings.append(f"'{field}' is not text; dropped")
            return ""
        return text

    def optional_number(self, field: str) -> float | None:
        value = self.data.get(field)
        if value is None:
            return None
        number = _number(value)
        if number is None:
            self.warnings.append(f"'{field}' is not a number; dropped")
        return number

    def optional_list(self, field: str) -> list[Any]:
        value = self.data.get(field)
        if value is None:
            return []
        if not isinstance(value, list):
            self.warnings.append(f"'{field}' must be a list, got a {kind_of_value(value)}; dropped")
            return []
        return value

    def published(self) -> bool:
        if "published" not in self.data:
            self.warnings.append("'published' is missing; treated as not published")
            return False
        value = self.data["published"]
        if not isinstance(value, bool):
            self.warnings.append(
                f"'published' must be true or false, got {value!r}; treated as not published"
            )
            return False
        return value

    def provider(self) -> Provider | None:
        value = self.data.get("provider")
        if value is None:
            return None
        if not isinstance(value, dict):
            kind = kind_of_value(value)
            self.warnings.append(f"'provider' must be a mapping, got a {kind}; dropped")
            return None
        name = _short_text(value.get("name")) or ""
        domain = _short_text(value.get("domain")) or ""
        provider, note = provider_and_note(name, domain)
        if provider is None:
            self.warnings.append("'provider' has neither a name nor a domain; dropped")
        elif note is not None:
            self.warnings.append(note)
        return provider

    def topics(self) -> tuple[Topic, ...]:
        topics: dict[str, Topic] = {}
        for position, value in enumerate(self.optional_list("topics"), 1):
            name = _short_text(value)
            topic, note = topic_and_note(name) if name else (None, None)
            if topic is None:
                self.warnings.append(f"topic {position} is not a usable name; dropped")
                continue
            if note is not None:
                self.warnings.append(note)
            topics.setdefault(topic.key, topic)
        return tuple(topics.values())

    def images(self, items: list[Any], where: str) -> tuple[Image, ...]:
        images = []
        for position, value in enumerate(items, 1):
            url = http_url(value.get("url")) if isinstance(value, dict) else None
            if url is None:
                self.warnings.append(f"{where} {position} has no absolute http(s) url; dropped")
                continue
            width = value.get("width")
            height = value.get("height")
            images.append(
                Image(
                    url,
                    width if _is_size(width) else 0,
                    height if _is_size(height) else 0,
                    self._image_title(value.get("title")),
                )
            )
        return tuple(images)

    def _image_title(self, value: Any) -> str:
        """The image's title, or "" when it only repeats the article's (the usual case): the
        content falls back to the article's title, and memory does not hold it twice."""
        title = _short_text(value) or ""
        return "" if title == _short_text(self.data.get("title")) else title

    def related(self) -> tuple[Related, ...]:
        related = []
        for position, value in enumerate(self.optional_list("related"), 1):
            if not isinstance(value, dict):
                self.warnings.append(f"related {position} is not a mapping; dropped")
                continue
            title = _short_text(value.get("title"))
            url = http_url(value.get("webUrl"))
            if not title or url is None:
                self.warnings.append(
                    f"related {position} needs a title and an absolute http(s) webUrl; dropped"
                )
                continue
            provider = value.get("provider")
            provider_name = ""
            if isinstance(provider, dict):
                provider_name = _short_text(provider.get("name")) or ""
            related.append(Related(title, url, provider_name))
        return tuple(related)

    def article(self) -> Article:
        title = self.required_text("title")
        if "webUrl" not in self.data:
            raise SeedError("missing required field 'webUrl'")
        url = http_url(self.data["webUrl"])
        if url is None:
            raise SeedError("'webUrl' must be an absolute http or https URL")
        if "publishedDateTime" not in self.data:
            raise SeedError("missing required field 'publishedDateTime'")
        published_at = parse_datetime(self.data["publishedDateTime"])
        if published_at is None:
            raise SeedError(
                f"'publishedDateTime' is not a date and time: {self.data['publishedDateTime']!r}"
            )
        return Article(
            url=url,
            title=title,
            excerpt=self.optional_text("excerpt"),
            published_at=published_at,
            provider=self.provider(),
            topics=self.topics(),
            image_text=pack_images(self.images(self.optional_list("images"), "image")),
            related_text=pack_related(self.related()),
            quality=self.optional_number("quality"),
            heat=self.optional_number("heat"),
            published=self.published(),
            body_html=self.body_html(url),
        )

    def body_html(self, url: str) -> str:
        """The Markdown body as sanitized HTML; a body that cannot be rendered is dropped."""
        if not self.body:
            return ""
        try:
            return body_html(_UNSAFE_CHARACTERS.sub("", self.body), url)
        except (ValueError, RecursionError) as error:
            self.warnings.append(f"the Markdown body cannot be rendered ({error}); dropped")
            return ""


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 100_000


def article_from_mapping(data: dict[str, Any], body: str = "") -> tuple[Article, tuple[str, ...]]:
    """Build an Article from front matter and its Markdown body; raises SeedError when a
    required field is unusable."""
    fields = ArticleFields(data, body)
    article = fields.article()
    return article, tuple(fields.warnings)
