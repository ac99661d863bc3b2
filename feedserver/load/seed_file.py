"""One seed file read whole: its bytes, text, front matter, fields and body, into an article
or the reason it cannot be one. Whatever goes wrong reading one file (the file system, the
YAML loader, our conversion) is that file's error, never an exception out of
`parse_seed_file`."""

from __future__ import annotations

import os
from pathlib import Path

from ..messages import one_line
from .fields import article_from_mapping
from .files import NotARegularFile, decode_seed_text, read_seed_bytes
from .front_matter import front_matter_at, markdown_body, still_says_published
from .records import ParsedSeed, SeedError, SeedFile, new_tuple
from .yaml_loader import load_yaml_mapping


def parse_seed_file(root: str | Path, seed: SeedFile, max_bytes: int) -> ParsedSeed:
    """Read one seed file into an article or an error; never raises."""
    data = b""
    try:
        data, info = read_seed_bytes(os.path.join(root, seed.path), max_bytes)
        signature = (info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns)
        if signature != seed[1:]:  # size, mtime, inode and ctime as the scan saw them
            # Changed since the scan: keep what was read, for the next reload to compare.
            seed = new_tuple(SeedFile, (seed.path, *signature))
        text = decode_seed_text(data)
        block, first_line = front_matter_at(text)
        article, warnings = article_from_mapping(
            load_yaml_mapping(block, first_line), markdown_body(text, block)
        )
    except NotARegularFile as error:
        # The scan's signature no longer describes this path: look again on the next reload
        # even if the file the scan saw comes back unchanged.
        return ParsedSeed(seed._replace(size=-1), None, str(error), ())
    except SeedError as error:
        return ParsedSeed(seed, None, str(error), (), still_says_published(data))
    except Exception as error:  # a value our conversion did not foresee: still this file's
        reason = f"cannot be used ({type(error).__name__}: {one_line(error)})"
        return ParsedSeed(seed, None, reason, (), still_says_published(data))
    return ParsedSeed(seed, article, None, warnings)
