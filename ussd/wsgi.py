"""The WSGI callable for any WSGI server: ``ussd.wsgi:app`` (settings from the environment)."""

from .web import create_app

app = create_app()
