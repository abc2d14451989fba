"""The Flask class this API runs on: Flask, with one cost taken off every
request.

Flask asks `ensure_sync` of every hook and view on every request (eleven
times for a bare route here), and each answer is an `inspect` call that
unwraps the function again. A plain function does not become a coroutine
between requests, so the functions found plain are remembered, weakly: a
closure made for one request (`after_this_request`, holding that request's
tokens) is forgotten with it. Async views still run as Flask runs them.
"""

from weakref import WeakSet

from flask import Flask


class Application(Flask):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._plain = WeakSet()

    def ensure_sync(self, func):
        try:
            if func in self._plain:
                return func
        except TypeError:  # no weak reference to it: asked afresh each time
            return super().ensure_sync(func)
        answer = super().ensure_sync(func)
        if answer is func:
            self._plain.add(func)
        return answer
