"""Running one measurement in a fresh interpreter, so that no figure inherits another's heap,
caches or garbage-collector state.

    python -m benchmarks.fresh MODULE:FUNCTION '{"keyword": "arguments"}'

runs `benchmarks.MODULE.FUNCTION(**arguments)` and prints its JSON result as the last line.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULT_MARK = "BENCHMARK-RESULT "


class ChildFailed(RuntimeError):
    """A measurement process exited with an error; the message carries its stderr tail."""


def clean_environment(**extra: str) -> dict[str, str]:
    """The caller's environment without FEEDSERVER_* settings, plus `extra`. No snapshot
    of parsed seeds is used unless `extra` names a FEEDSERVER_CACHE_DIR: a cold load must
    be cold."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSERVER_")}
    env["FEEDSERVER_CACHE_DIR"] = ""
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run(target: str, timeout: float = 3600, **arguments: Any) -> Any:
    """Call `benchmarks.<target>` ("module:function") with arguments in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.fresh", target, json.dumps(arguments)],
        cwd=REPO_ROOT,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    tail = "\n".join(result.stderr.splitlines()[-20:])
    raise ChildFailed(f"{target} exited with {result.returncode}:\n{tail}")


def main() -> None:
    """Child side: import the function, call it, print its result."""
    target, arguments = sys.argv[1], json.loads(sys.argv[2])
    module_name, function_name = target.split(":")
    function = getattr(importlib.import_module(f"benchmarks.{module_name}"), function_name)
    result = function(**arguments)
    print(RESULT_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
