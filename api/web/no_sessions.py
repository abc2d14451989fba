"""No Flask session: this API keeps no state in a signed cookie.

Who a request speaks for is its token alone (api/auth/identity.py). Flask's
default session interface still builds a signing serializer on every request
to look for a `session` cookie nobody sets: about a twentieth of a bare
route's time. This one opens none; anything that tried to write to
`flask.session` would fail loudly (Flask's NullSession) rather than set a
cookie the contract does not have.
"""

from flask.sessions import SessionInterface


class NoSessions(SessionInterface):
    def open_session(self, app, request):
        return None  # Flask then gives the request its NullSession

    def save_session(self, app, session, response):
        pass


def init_app(app):
    app.session_interface = NoSessions()
