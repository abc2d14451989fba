"""`?page=&per_page=` for list routes: the items in the body, where they sit in
the header `X-Pagination` (flask-smorest's format)."""

import json
import math

from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from api.extensions import db

MAX_PER_PAGE = 100


class PageQuerySchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


def paginate(query, page, per_page):
    """(items, 200, headers) for one page of `query`, with the count of all its rows."""
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = db.session.scalars(query.limit(per_page).offset((page - 1) * per_page)).all()
    pages = max(1, math.ceil(total / per_page))
    meta = {"total": total, "total_pages": pages, "page": page, "per_page": per_page}
    if page > 1:
        meta["previous_page"] = min(page - 1, pages)
    if page < pages:
        meta["next_page"] = page + 1
    return items, 200, {"X-Pagination": json.dumps(meta)}
