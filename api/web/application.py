"""The Flask class this API runs on: Flask, with one cost taken off every
request.

Flask asks `ensure_sync` of every hook and view on every request (eleven
times for a bare route here), and each answer is an `inspect` call that
unwraps the function again. A function does not change from a coroutine into
a plain one between requests, so the answer is kept per function. Async
views would still run as Flask runs them.
"""

from flask import Flask


class Application(Flask):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sync = {}

    def ensure_sync(self, func):
        try:
            return self._sync[func]
        except KeyError:
            return self._sync.setdefault(func, super().ensure_sync(func))
        except TypeError:  # an unhashable callable: asked afresh each time
            return super().ensure_sync(func)
