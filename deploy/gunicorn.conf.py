"""gunicorn settings of the image's web service (docker-compose.yml: `gunicorn --config ...`).

Its own loggers (gunicorn.error, gunicorn.access) print the same JSON lines as the portal
(portal/logformat.py) through the same redaction filter. The access line names the path only,
never the query string or the referrer, where a code or a token could travel.
"""

import copy

from portal import logformat

bind = "0.0.0.0:8000"
# About 2 per core; threads cover the time requests spend waiting for a provider.
workers = 3
threads = 4
timeout = 60
accesslog = "-"
access_log_format = 'method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s duration_ms=%(M)s remote=%(h)s'

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": copy.deepcopy(logformat.REDACT_FILTER)},
    "formatters": copy.deepcopy(logformat.FORMATTERS),
    "handlers": {"console": copy.deepcopy(logformat.CONSOLE_HANDLER)},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
