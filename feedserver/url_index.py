"""Which seed files hold each webUrl: the store files every file's state under the URL it
serves (or withholds), so that a reload chooses again only for the URLs its files touch."""

from __future__ import annotations

from .file_state import FileState


class UrlIndex:
    """Paths by webUrl. A URL held by one file maps to its path, one held by several to a
    tuple of paths: a set per URL would cost 200 bytes each at 100,000 articles."""

    def __init__(self) -> None:
        self._paths_by_url: dict[str, str | tuple[str, ...]] = {}

    def paths_of(self, url: str) -> tuple[str, ...]:
        """The files that hold url, in the order they came."""
        paths = self._paths_by_url.get(url, ())
        return (paths,) if isinstance(paths, str) else paths

    def _set_paths(self, url: str, paths: tuple[str, ...]) -> None:
        if not paths:
            self._paths_by_url.pop(url, None)
        else:
            self._paths_by_url[url] = paths[0] if len(paths) == 1 else paths

    def add(self, state: FileState) -> None:
        """File a state's path under the URL it serves or withholds."""
        url = state.url
        if url is not None:
            paths = self.paths_of(url)
            path = state.latest.file.path
            if path not in paths:
                self._set_paths(url, (*paths, path))

    def remove(self, state: FileState) -> None:
        """Take a state's path out from under its URL."""
        url = state.url
        if url is not None:
            path = state.latest.file.path
            self._set_paths(url, tuple(p for p in self.paths_of(url) if p != path))
