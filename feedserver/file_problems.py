"""The problems of the seed files as the last reload left them: each file's error and
warnings, and which files failed, serve a last good version (stale), or had it withheld."""

from __future__ import annotations

from .catalog import Problem
from .file_state import FileState
from .load.records import ParsedSeed

WITHHELD = "its last good version is withheld: the file no longer says 'published: true'"


def seed_problems(seed: ParsedSeed) -> list[Problem]:
    """The error or warnings of one parsed file."""
    if seed.error is not None:
        return [Problem(seed.file.path, seed.error, True)]
    return [Problem(seed.file.path, warning, False) for warning in seed.warnings]


class FileProblems:
    """Kept up to date one file at a time, as a reload changes that file's state."""

    def __init__(self) -> None:
        self._by_path: dict[str, list[Problem]] = {}  # only files that have any
        self.failed: set[str] = set()
        self.stale: set[str] = set()
        self.withheld: set[str] = set()

    def note(self, path: str, state: FileState | None) -> None:
        """The file's problems under its new state (None: it is gone)."""
        problems = seed_problems(state.served) if state else []
        if state is not None and state.withheld:
            problems = [Problem(path, f"{state.latest.error}; {WITHHELD}", True)]
        if problems:
            self._by_path[path] = problems
        else:
            self._by_path.pop(path, None)
        failed = state is not None and state.latest.error is not None
        (self.failed.add if failed else self.failed.discard)(path)
        stale = failed and state is not None and state.good is not None
        (self.stale.add if stale else self.stale.discard)(path)
        withheld = failed and not stale and state is not None and state.withheld
        (self.withheld.add if withheld else self.withheld.discard)(path)

    def first_reason(self, path: str) -> str:
        """What is wrong with a file that has a problem, in one line."""
        return self._by_path[path][0].reason

    def listed(self) -> list[Problem]:
        """Every file's problems, file by file."""
        return [problem for problems in self._by_path.values() for problem in problems]
