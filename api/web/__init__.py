"""The plumbing every request crosses, whatever its route: the error envelope,
JSON bodies, the OpenAPI document's security, CORS, proxies, logs, metrics,
rate limits and pagination."""
