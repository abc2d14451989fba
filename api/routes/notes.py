"""`/api/notes`: the example of an owner-scoped resource, to copy for your
own: its model, its queries and its routes in one module.

Every query is scoped to the caller (`owned()`), so another user's note is
404 exactly as a missing one (OWASP API1, broken object-level authorization),
and the schemas allow-list what a body may set (API3, mass assignment).
"""

from datetime import datetime

from flask import url_for
from flask_jwt_extended import get_current_user
from flask_smorest import abort
from sqlalchemy import DateTime, ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from api.auth.identity import token_required
from api.auth.scopes import NOTES_READ, NOTES_WRITE
from api.clock import utcnow
from api.extensions import db
from api.routes import groups
from api.schemas import MAX_ID, NoteCreateSchema, NotePatchSchema, NoteSchema
from api.web.openapi import AUTH_DOC, READ_AUTH_DOC
from api.web.pagination import PageQuerySchema, paginate

NOTE = f"/api/notes/<int(max={MAX_ID}):note_id>"


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


@groups.notes.get("/api/notes")
@groups.notes.doc(**READ_AUTH_DOC)
@token_required(scope=NOTES_READ)
@groups.notes.arguments(PageQuerySchema, location="query", as_kwargs=True)
@groups.notes.response(200, NoteSchema(many=True))
def list_notes(page, per_page):
    """The caller's notes, newest first; X-Pagination says where this page is."""
    query = owned().order_by(Note.id.desc())
    return paginate(query, page, per_page)


@groups.notes.post("/api/notes")
@groups.notes.doc(**AUTH_DOC)
@token_required(scope=NOTES_WRITE)
@groups.notes.arguments(NoteCreateSchema)
@groups.notes.response(201, NoteSchema)
def create_note(data):
    """A new note of the caller's; Location names it."""
    note = Note(owner_id=get_current_user().id, **data)
    db.session.add(note)
    db.session.commit()
    return note, 201, {"Location": url_for("notes.get_note", note_id=note.id)}


@groups.notes.get(NOTE)
@groups.notes.doc(**READ_AUTH_DOC)
@token_required(scope=NOTES_READ)
@groups.notes.response(200, NoteSchema)
def get_note(note_id):
    """One of the caller's notes."""
    return own_note(note_id)


@groups.notes.patch(NOTE)
@groups.notes.doc(**AUTH_DOC)
@token_required(scope=NOTES_WRITE)
@groups.notes.arguments(NotePatchSchema)
@groups.notes.response(200, NoteSchema)
def update_note(data, note_id):
    """Change a note's title or body."""
    note = own_note(note_id)
    for field, value in data.items():
        setattr(note, field, value)
    db.session.commit()
    return note


@groups.notes.delete(NOTE)
@groups.notes.doc(**AUTH_DOC)
@token_required(scope=NOTES_WRITE)
@groups.notes.response(204)
def delete_note(note_id):
    """Delete a note."""
    db.session.delete(own_note(note_id))
    db.session.commit()
