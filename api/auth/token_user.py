"""The user a verified token speaks for, as one read gives it: a user's
login token (api/auth/identity.py) or a personal access token
(api/auth/personal_tokens.py)."""

from dataclasses import dataclass
from datetime import datetime

from api.accounts.users import User


@dataclass(frozen=True)
class TokenUser:
    """The user a verified token speaks for. Read-only: a view that changes
    the user loads the model (`db.session.get(User, id)`).

    A plain row, not the model: every authenticated request loads one, and
    SQLAlchemy's ORM costs more than the rest of the token check together.
    """

    id: int
    username: str
    roles: list[str]
    created_at: datetime
    email: str | None
    email_verified: bool
    mfa_enabled: bool


# What a TokenUser holds, and `disabled`, which refuses the token.
NAMES = ("id", "username", "roles", "created_at", "email", "email_verified", "mfa_enabled")
COLUMNS = tuple(User.__table__.c[name] for name in (*NAMES, "disabled"))


def from_row(row):
    """A TokenUser from a row holding COLUMNS, or None when the user is gone
    or disabled."""
    if row is None or row.disabled:
        return None
    return TokenUser(*(getattr(row, name) for name in NAMES))
