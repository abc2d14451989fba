"""Every reach into a library's private internals, in one list.

Each was a last resort: the library offered no public way to do what the
contract or the hot path needs. Each names where it is, why, the version of
the library it was checked against (the one pinned in requirements.txt), and
the test that fails when an upgrade breaks it. tests/test_internals.py fails
as soon as an installed version differs from the one checked here: read the
reach against the new version, run its test, then update `checked`.

Nothing imports this module at run time; it is the list, kept beside the code.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Reach:
    library: str  # the distribution, as requirements.txt pins it
    checked: str  # the version this reach was read against
    where: str  # module:function that reaches in
    reaches: str  # the private name or behaviour relied on
    why: str
    test: str  # path::test that fails when an upgrade breaks it


REACHES = (
    Reach(
        library="PyJWT",
        checked="2.15.1",
        where="api.auth.parse_cache:install",
        reaches="jwt.api_jws._jws_global_obj and PyJWS._load (replaced by a cached one)",
        why="flask-jwt-extended has PyJWT parse each token four times per request; the "
        "parse (not the verification) is kept per token, about a quarter of the check.",
        test="tests/auth/test_parse_cache.py::test_the_parse_is_done_once_per_token",
    ),
    Reach(
        library="Flask-SQLAlchemy",
        checked="3.1.1",
        where="api.database:_end_sessions_whatever_the_connection",
        reaches="SQLAlchemy._teardown_session in app.teardown_appcontext_funcs (replaced)",
        why="its end-of-request ROLLBACK on a connection the server dropped raised past "
        "Flask and cost a committed request its answer.",
        test="tests/test_database.py::"
        "test_a_connection_dropped_before_the_session_ends_costs_no_answer",
    ),
    Reach(
        library="Flask-Limiter",
        checked="4.1.1",
        where="api.web.limits:_keep_answer_without_headers",
        reaches="Limiter._Limiter__inject_headers, found in app.after_request_funcs (wrapped)",
        why="the store (Redis, the database) lost between the limit check and the header "
        "hook turned a committed login or refresh into a 500; the start fails if the hook "
        "is not found.",
        test="tests/web/test_limits.py::test_store_lost_after_the_view_keeps_the_answer",
    ),
    Reach(
        library="Flask-Limiter",
        checked="4.1.1",
        where="api.web.limits:_check_on_limited_routes_only",
        reaches="Limiter._check_request_limit, found in app.before_request_funcs (removed "
        "when no default, application or meta limit is configured, read in the app's "
        "config and in LimitManager._default_limits, _application_limits and "
        "Limiter._meta_limits)",
        why="it evaluated limits this API never sets on every request, about a seventh of "
        "a bare route's time; each route's own limit is checked by its decorator.",
        test="tests/web/test_limits.py::test_only_a_limited_route_pays_for_flask_limiter",
    ),
    Reach(
        library="flask-jwt-extended",
        checked="4.7.4",
        where="api.auth.identity:token_sources",
        reaches="the Authorization header rewritten in request.environ before verification, "
        "relying on how the library splits the header into scheme and token",
        why="the library falls back to cookies when the scheme is not spelled exactly "
        "'Bearer'; RFC 7235 makes it case-insensitive and the contract lets the "
        "header decide alone.",
        test="tests/auth/test_identity.py::"
        "test_bearer_scheme_is_case_insensitive_and_still_decides",
    ),
    Reach(
        library="flask-jwt-extended",
        checked="4.7.4",
        where="api.auth.identity:_accept_personal_token",
        reaches="flask.g._jwt_extended_jwt_user, _jwt_extended_jwt and _jwt_extended_jwt_header, "
        "set as verify_jwt_in_request sets them",
        why="a personal access token is no JWT, yet the views it may call read their user "
        "with get_current_user(), as for a login's token; no public way sets it.",
        test="tests/routes/test_tokens.py::test_a_token_does_what_its_scopes_name",
    ),
    Reach(
        library="Authlib",
        checked="1.9.10",
        where="api.oauth.server:BodyPayload.data",
        reaches="FlaskOAuth2Payload._request (the Flask request it wraps)",
        why="Authlib reads OAuth parameters from the query string and the body together; "
        "RFC 6749 §3.2 wants the token endpoint's in the body only (a secret in a query "
        "string lands in access logs).",
        test="tests/oauth/test_token.py::test_parameters_in_the_query_string_are_not_read",
    ),
    Reach(
        library="flask-smorest",
        checked="0.47.0",
        where="api.web.openapi:document_scope",
        reaches="a view's _apidoc['manual_doc'] (what Blueprint.doc() writes), from inside "
        "token_required",
        why="a route's scope is declared once, as token_required's argument, and the "
        "OpenAPI operation must list it; doc() would need a second declaration.",
        test="tests/web/test_openapi.py::test_each_route_s_scope_is_on_its_operation",
    ),
    Reach(
        library="webargs",
        checked="8.7.1",
        where="api.web.json_bodies:JSONOnlyParser._raw_load_json",
        reaches="FlaskParser._raw_load_json (overridden)",
        why="a body without a JSON content type must be 415, not a 422 of missing fields; "
        "NUL characters and lone surrogates are refused before any view.",
        test="tests/web/test_errors.py::test_error_envelope",
    ),
    Reach(
        library="gunicorn",
        checked="27.0.1",
        where="gunicorn.conf.py:write_json_error",
        reaches="gunicorn.util.write_error (replaced)",
        why="gunicorn answers requests it cannot parse itself, in HTML, with no hook; the "
        "contract wants JSON from every layer.",
        test="tests/e2e/test_gunicorn.py::test_errors_gunicorn_answers_itself_are_json",
    ),
    Reach(
        library="gunicorn",
        checked="27.0.1",
        where="api.web.gunicorn_logging:JSONLogger.access",
        reaches="the response object gunicorn hands its access logger (resp.status, resp.sent), "
        "which its own error answers build differently",
        why="one JSON access line per request, gunicorn's own error answers included.",
        test="tests/e2e/test_gunicorn.py::test_gunicorn_s_own_error_answers_are_logged_not_dropped",
    ),
    Reach(
        library="gunicorn",
        checked="27.0.1",
        where="api.web.json_bodies:_read_within_limit",
        reaches="gunicorn.http.errors.ParseException, raised from the request body stream",
        why="a broken chunked body surfaces while the app reads it; it must be a JSON 400, "
        "not a 500.",
        test="tests/e2e/test_gunicorn.py::test_broken_chunked_body_is_a_json_400",
    ),
    Reach(
        library="gunicorn",
        checked="27.0.1",
        where="api.web.gunicorn_worker:BufferingThreadWorker",
        reaches="ThreadWorker.enqueue_req, finish_request, murder_pending, handle_request, "
        "_keepalive_after and handle_error (overridden); TConn.close (replaced per "
        "connection: its graceful close waited in the event loop); a connection's parser "
        "and data_ready; the parser's unreader.take_buffered and unread",
        why="gthread gives a connection a thread at its first byte and waits with no "
        "deadline: a dozen stalled clients held every thread. The event loop now reads each "
        "request whole before a thread serves it, and answers 408 past a deadline.",
        test="tests/e2e/test_gunicorn_hardening.py::test_stalled_clients_do_not_stop_the_server",
    ),
    Reach(
        library="gunicorn",
        checked="27.0.1",
        where="api.web.gunicorn_worker:describe",
        reaches="the hdr and req attributes of gunicorn.http.errors.InvalidHeader, and the "
        "arguments gunicorn passes its error-log lines",
        why="gunicorn's own 400s must say what was wrong (a repeated Host) without quoting "
        "the client's bytes, in the answer or in the log.",
        test="tests/e2e/test_gunicorn_hardening.py::test_gunicorn_s_own_errors_say_what_was_wrong",
    ),
)
