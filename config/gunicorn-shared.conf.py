"""gunicorn settings for feedserver with workers that share one catalog:
`gunicorn -c config/gunicorn-shared.conf.py wsgi:app`.

Everything config/gunicorn.conf.py sets, and: the master loads the seeds (preload) and
reloads them for every worker; after a reload that changed what is served it replaces the
workers by new ones forked from it, which share its catalog copy-on-write (see
feedserver/shared_reload.py and the README's deployment section). Four workers then hold
about one catalog in all, plus what each allocates, rather than one each. Restart rather
than HUP (a HUP reloads the app without moving the reload job to it).
"""

import runpy
from pathlib import Path

from feedserver.gunicorn_hooks import share_reloads

globals().update(
    {
        name: value
        for name, value in runpy.run_path(str(Path(__file__).with_name("gunicorn.conf.py"))).items()
        if not name.startswith("__")
    }
)
preload_app = True
when_ready = share_reloads
