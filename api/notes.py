"""Notes: the example of an owner-scoped resource, to copy for your own.

Every query is scoped to the caller (`owned()`), so another user's note is
404 exactly as a missing one (OWASP API1, broken object-level authorization),
and the schemas allow-list what a body may set (API3, mass assignment).
"""

from datetime import datetime

from flask import url_for
from flask_jwt_extended import get_current_user
from flask_smorest import abort
from sqlalchemy import DateTime, ForeignKey, String, Text, func, select
from sqlalchemy.orm import Mapped, mapped_column

from api.auth import token_required
from api.extensions import db
from api.json_http import AUTH_DOC, READ_AUTH_DOC, Blueprint
from api.pagination import PageQuerySchema, paginate
from api.schemas import NoteCreateSchema, NotePatchSchema, NoteSchema
from api.users import MAX_ID, utcnow

blp = Blueprint("notes", __name__, url_prefix="/api/notes", description="The caller's notes")


class Note(db.Model):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


def owned():
    return select(Note).where(Note.owner_id == get_current_user().id)


def own_note(note_id):
    note = db.session.scalar(owned().where(Note.id == note_id))
    if note is None:
        abort(404, message="No such note.")
    return note


@blp.get("")
@blp.doc(**READ_AUTH_DOC)
@token_required()
@blp.arguments(PageQuerySchema, location="query", as_kwargs=True)
@blp.response(200, NoteSchema(many=True))
def list_notes(page, per_page):
    """The caller's notes, newest first; X-Pagination says where this page is."""
    query = owned().order_by(Note.id.desc())
    total = db.session.scalar(select(func.count()).select_from(owned().subquery()))
    return paginate(query, total, page, per_page)


@blp.post("")
@blp.doc(**AUTH_DOC)
@token_required()
@blp.arguments(NoteCreateSchema)
@blp.response(201, NoteSchema)
def create_note(data):
    """A new note of the caller's; Location names it."""
    note = Note(owner_id=get_current_user().id, **data)
    db.session.add(note)
    db.session.commit()
    return note, 201, {"Location": url_for("notes.get_note", note_id=note.id)}


@blp.get(f"/<int(max={MAX_ID}):note_id>")
@blp.doc(**READ_AUTH_DOC)
@token_required()
@blp.response(200, NoteSchema)
def get_note(note_id):
    """One of the caller's notes."""
    return own_note(note_id)


@blp.patch(f"/<int(max={MAX_ID}):note_id>")
@blp.doc(**AUTH_DOC)
@token_required()
@blp.arguments(NotePatchSchema)
@blp.response(200, NoteSchema)
def update_note(data, note_id):
    """Change a note's title or body."""
    note = own_note(note_id)
    for field, value in data.items():
        setattr(note, field, value)
    db.session.commit()
    return note


@blp.delete(f"/<int(max={MAX_ID}):note_id>")
@blp.doc(**AUTH_DOC)
@token_required()
@blp.response(204)
def delete_note(note_id):
    """Delete a note."""
    db.session.delete(own_note(note_id))
    db.session.commit()
