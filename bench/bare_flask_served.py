"""gunicorn settings for bare Flask served as the API is: the API's worker
(gthread that reads each request whole first, as gunicorn.conf.py sets it)
and its JSON access line, none of the API itself.

bench/run.py measures it beside bare Flask under sync workers: what serving a
route this way costs before any of the app's work.
"""

from api.web.gunicorn_logging import JSONLogger

workers = 2
worker_class = "api.web.gunicorn_worker.BufferingThreadWorker"
threads = 4
keepalive = 5
accesslog = "-"
logger_class = JSONLogger
