"""Values written into a one-line report: an error message or a value, cut to a length."""

from __future__ import annotations

from typing import Any


def one_line(error: BaseException, limit: int = 200) -> str:
    """An exception's message on one line, cut at limit characters."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kind_of_value(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return "single value"
