"""The same settings as config/gunicorn.conf.py, kept for the commands that name this file:
workers that share the master's catalog were opt-in here before they became the default."""

import runpy
from pathlib import Path

globals().update(
    {
        name: value
        for name, value in runpy.run_path(str(Path(__file__).with_name("gunicorn.conf.py"))).items()
        if not name.startswith("__")
    }
)
