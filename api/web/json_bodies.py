"""JSON in, JSON out: a body that is not JSON never reaches a view, and no
answer is cached.

Every view with a body schema reads it through JSONOnlyParser (the
Blueprint below sets it); every request with a body, schema or not, is
checked once before its view (`check_body`).

The one exception is /oauth/*: RFC 6749 takes its parameters as a form
(application/x-www-form-urlencoded), so those routes (api/routes/oauth.py)
take a form and nothing else."""

import json

from flask import g, has_request_context, request
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest import abort
from gunicorn.http.errors import ParseException as MalformedBody
from webargs.flaskparser import FlaskParser, is_json_request

BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")
OAUTH_PATH_PREFIX = "/oauth/"
FORM = "application/x-www-form-urlencoded"


class JSONOnlyParser(FlaskParser):
    """A view that takes a body answers 415 to one without a JSON content type.

    webargs would treat it as missing and answer 422; 415 says what is wrong,
    and it stops cross-site HTML form posts (which cannot send JSON) outright.
    """

    def _raw_load_json(self, req):
        if "json_body" in g:
            return g.json_body  # parsed once already, by check_body
        if not is_json_request(req):
            abort(415)
        # Malformed JSON is webargs' own 400; these are the cases it lets through.
        try:
            data = super()._raw_load_json(req)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise
        except (RecursionError, ValueError):  # too deep; an integer of over 4300 digits
            abort(400, message=BAD_TEXT)
        try:
            _check_text(data)
        except (RecursionError, UnicodeEncodeError, ValueError):
            abort(400, message=BAD_TEXT)
        return data


BAD_TEXT = (
    "The request body is JSON this API does not take "
    "(nested too deep, a lone surrogate, a huge number)."
)


def _check_text(value):
    """Refuse what json.loads lets through but is no text: unpaired surrogates
    (not UTF-8). A NUL is text, which no schema's string takes (api.schemas.Text):
    a 422 naming the field."""
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)


PARSER = JSONOnlyParser()


class Blueprint(SmorestBlueprint):
    """flask-smorest's Blueprint, reading bodies through JSONOnlyParser."""

    ARGUMENTS_PARSER = PARSER


def check_body():
    """Before every view, with a body schema or not: the body must be JSON,
    whole and within MAX_CONTENT_LENGTH; it is parsed once, here."""
    if request.routing_exception is not None or request.method not in BODY_METHODS:
        return  # no such route or method: that 404/405 says more than a 415
    if not (request.content_length or "Transfer-Encoding" in request.headers):
        return
    if is_oauth_request():
        _check_form()
        return
    if not is_json_request(request):
        abort(415)
    _read_within_limit()
    g.json_body = PARSER.load_json(request, None)


def is_oauth_request():
    """A request to /oauth/*, whose errors and bodies are RFC 6749's."""
    return has_request_context() and request.path.startswith(OAUTH_PATH_PREFIX)


def _check_form():
    """An OAuth body: a form, whole and within MAX_CONTENT_LENGTH. Authlib
    parses it (request.form reads the body cached here)."""
    if request.mimetype != FORM:
        abort(
            400,
            error="invalid_request",
            message=f"Send the parameters as a form (Content-Type: {FORM}).",
        )
    _read_within_limit()


def _read_within_limit():
    try:
        request.get_data(cache=True)
        if request.content_length is None:
            # A chunked body is cut at the limit without a word; reading on past
            # it makes werkzeug raise its 413.
            request.stream.read(1)
    except MalformedBody:  # a broken chunked encoding, met while reading
        abort(400, message="The request body's chunked encoding is broken.")


def no_store(response):
    # RFC 6749 §5.1: token-bearing and personal answers must not be cached.
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


def init_app(app):
    app.before_request(check_body)
    app.after_request(no_store)
