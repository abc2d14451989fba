"""The ceiling of `make bench`: a bare Flask JSON route, nothing else.

No hooks, no extensions, no logging: what Flask and gunicorn cost on their
own. bench/run.py serves it with gunicorn's sync workers, 2 of them (this
module is also that server's gunicorn configuration), and measures every case
of the API against it in the same run.
"""

from flask import Flask

workers = 2
worker_class = "sync"

app = Flask(__name__)


@app.get("/")
def bare():
    return {"status": "ok"}
