"""The WSGI callable for any WSGI server: ``ussd.wsgi:app``, with settings from the environment.

``ussd serve`` does not use it: it hands its own settings to each worker
(:func:`ussd.assembly.worker_app`).
"""

from .assembly import worker_app
from .settings import Settings

app = worker_app(Settings.from_env())
