"""The WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`.

A configuration that cannot work stops the start with one line (see
config.ConfigError).
"""

from api import create_app

app = create_app()
