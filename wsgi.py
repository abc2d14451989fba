"""The WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`."""

import sys

from api import create_app
from api.keys import KeyConfigError

try:
    app = create_app()
except KeyConfigError as exc:
    # One clear line instead of a traceback; the process exits non-zero.
    sys.exit(f"error: {exc}")
