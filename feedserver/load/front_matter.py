"""A seed file's text cut into its YAML front matter and its Markdown body, and a lenient
look at whether a file that failed still says `published: true`."""

from __future__ import annotations

import re

from .records import SeedError


def front_matter(text: str) -> str:
    """The YAML between the opening `---` line and the next; the whole text if there is none."""
    return front_matter_at(text)[0]


def front_matter_at(text: str) -> tuple[str, int]:
    """The front matter (as `front_matter`) and the number of its first line in the file."""
    first_line_end = text.find("\n")
    first_line = text if first_line_end < 0 else text[:first_line_end]
    if first_line.rstrip() != "---":
        return text, 1
    position = first_line_end
    while position >= 0:  # str.find is many times faster than a multiline regex here
        fence = text.find("\n---", position)
        if fence < 0:
            break
        line_end = text.find("\n", fence + 4)
        if not text[fence + 4 : line_end if line_end >= 0 else len(text)].strip(" \t\r"):
            return text[first_line_end + 1 : fence + 1], 2
        position = fence + 4
    raise SeedError("front matter has no closing '---' line")


def markdown_body(text: str, block: str | None = None) -> str:
    """The text after the front matter's closing `---` line: the article's Markdown body;
    "" when the file is a whole YAML mapping or holds nothing after its front matter.
    `block` is front_matter(text) when the caller has it already."""
    if block is None:
        block = front_matter(text)
    if block is text:
        return ""
    # front_matter's block runs from after the first line to the closing line's start.
    closing_start = text.find("\n") + 1 + len(block)
    closing_end = text.find("\n", closing_start)
    if closing_end < 0:
        return ""
    body = text[closing_end + 1 :]
    return body if body.strip() else ""


# A `published:` line (the key maybe quoted, maybe indented), and a value that says true.
_PUBLISHED_LINE = re.compile(r"""[ \t]*(["']?)published\1[ \t]*:(.*)""")
_TRUE_VALUE = re.compile(r"(?:true|True|TRUE)(?:[ \t]+#.*)?")


def still_says_published(data: bytes) -> bool:
    """Whether a file's raw front matter has a `published: true` line and no `published:`
    line that says anything else; read leniently (any encoding, broken YAML, no closing
    fence), because it is asked only of files that failed to parse."""
    lines = data.decode("utf-8", "replace").removeprefix("\ufeff").splitlines()
    if lines and lines[0].rstrip() == "---":
        closing = next((n for n, line in enumerate(lines) if n and line.rstrip() == "---"), None)
        lines = lines[1:closing]
    values = [match[2].strip() for line in lines if (match := _PUBLISHED_LINE.fullmatch(line))]
    return bool(values) and all(_TRUE_VALUE.fullmatch(value) for value in values)
