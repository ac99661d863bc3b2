"""Parsers of setting values: each takes what a config file, an environment variable or the
command line gave (text, a number, a list) and returns the checked value, or raises
ValueError saying what was wanted."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .networks import Network


def integer(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("must be an integer")
        try:
            number = int(str(value).strip()) if isinstance(value, str) else int(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be an integer, got {value!r}") from None
        if isinstance(value, float) and value != number:
            raise ValueError(f"must be an integer, got {value!r}")
        if number < minimum or (maximum is not None and number > maximum):
            upper = f" and {maximum}" if maximum is not None else ""
            bound = f"between {minimum}{upper}" if maximum is not None else f">= {minimum}"
            raise ValueError(f"must be {bound}, got {number}")
        return number

    return parse


def any_text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"must be text, got {type(value).__name__}")
    return str(value).strip()


def nonempty_text(value: Any) -> str:
    text = any_text(value)
    if not text:
        raise ValueError("must not be empty")
    return text


def base_url(value: Any) -> str:
    text = any_text(value)
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"must be an absolute http(s) URL such as https://feeds.example.com, got {text!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or fragment")
    return text.rstrip("/")


def hub_url(value: Any) -> str:
    text = any_text(value)
    if text and not base_url(text):
        raise ValueError("must be an absolute http(s) URL")
    return text


# Image types RSS <image> may name (the W3C validator warns on any other file extension).
IMAGE_EXTENSIONS = (".png", ".gif", ".jpg", ".jpeg")


def image_url(value: Any) -> str:
    text = any_text(value)
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an absolute http(s) URL of an image, got {text!r}")
    if not parts.path.lower().endswith(IMAGE_EXTENSIONS):
        raise ValueError(f"must name a PNG, GIF or JPEG file ({', '.join(IMAGE_EXTENSIONS)})")
    return text


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else ""
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def networks(value: Any) -> tuple[Network, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("must be a list of addresses or networks such as 127.0.0.0/8")
    networks = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an address or network") from None
    return tuple(networks)


def optional_path(value: Any) -> str:
    return any_text(value)


def path(value: Any) -> str:
    return nonempty_text(value)


def language(value: Any) -> str:
    text = nonempty_text(value)
    if not all(part.isalnum() and len(part) <= 8 for part in text.split("-")):
        raise ValueError(f"must be a language tag such as en or en-US, got {text!r}")
    return text
