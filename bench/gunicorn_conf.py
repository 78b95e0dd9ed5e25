"""gunicorn settings for the server comparison in bench/run.py (``--server gunicorn-...``).

The hop log goes to stderr at INFO, one line per hop, as under ``ussd serve``, so that the
servers are compared on the same work.
"""

accesslog = None
timeout = 5  # below the gateway's hop deadline
keepalive = 75  # the load generator keeps its connections, as a gateway does
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {"ussd": {"level": "INFO", "handlers": ["stderr"], "propagate": False}},
}
