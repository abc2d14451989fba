"""Behind TRUSTED_PROXY_HOPS reverse proxies, the client's address and scheme
are the ones the nearest proxies saw (werkzeug's ProxyFix); an
X-Forwarded-For from anyone else is ignored. Rate limits, logs and login
sessions all take the address from here."""

from werkzeug.middleware.proxy_fix import ProxyFix


def init_app(app):
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
