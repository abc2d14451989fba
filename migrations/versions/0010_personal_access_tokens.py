"""personal access tokens

Revision ID: 0010_personal_access_tokens
Revises: 0009_passkeys
Create Date: 2026-12-01

"""

import sqlalchemy as sa
from alembic import op

revision = "0010_personal_access_tokens"
down_revision = "0009_passkeys"
branch_labels = None
depends_on = None


def upgrade():
    # api/auth/personal_tokens.py: a user's long-lived, scoped tokens, kept as hashes.
    op.create_table(
        "personal_access_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_personal_access_tokens_user_id", "personal_access_tokens", ["user_id"])
    op.create_index(
        "ix_personal_access_tokens_expires_at", "personal_access_tokens", ["expires_at"]
    )


def downgrade():
    op.drop_table("personal_access_tokens")
