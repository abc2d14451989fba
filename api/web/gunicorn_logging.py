"""gunicorn's own log lines as JSON, like the app's (api/web/logs.py): the
logger class gunicorn.conf.py names."""

import os

from gunicorn import glogging

from api.web.gunicorn_worker import CLIENT_BYTES_FILTER
from api.web.logs import AccessLineFormatter, json_formatter, write_access_line


class JSONLogger(glogging.Logger):
    """gunicorn's own lines as JSON, like the app's (api/web/logs.py). The access
    line has the path without its query string (a token or password sent
    there never lands in a log) and the request's id; its other lines keep out
    the raw requests gunicorn would quote (api/web/gunicorn_worker.py)."""

    def setup(self, cfg):
        super().setup(cfg)
        self.error_log.addFilter(CLIENT_BYTES_FILTER)
        for handler in self.error_log.handlers:
            handler.setFormatter(json_formatter())
        for handler in self.access_log.handlers:
            handler.setFormatter(AccessLineFormatter())

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        # As gunicorn's own: a failure here must never cost the client its
        # answer (gunicorn also logs its own error answers through here).
        try:
            write_access_line(self.access_log, access_fields(resp, environ, request_time))
        except Exception:
            self.exception("access log line not written")


def access_fields(resp, environ, request_time):
    request_id = next((v for k, v in resp.headers if k.lower() == "x-request-id"), None)
    # An error answer gunicorn writes itself has its status only as text.
    status = getattr(resp, "status_code", None) or int(str(resp.status).split()[0])
    return {
        "remote_addr": environ.get("REMOTE_ADDR"),  # after ProxyFix
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "status": status,
        "bytes": resp.sent,
        "duration_ms": round(request_time.total_seconds() * 1000, 3),
        "request_id": request_id,
        "pid": os.getpid(),
    }
