"""The WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`."""

import sys

from api import create_app
from config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    # One clear line instead of a traceback; the process exits non-zero.
    sys.exit(f"error: {exc}")
