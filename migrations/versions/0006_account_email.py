"""account email and one-time tokens

Revision ID: 0006_account_email
Revises: 0005_rate_limits
Create Date: 2026-11-30

"""

import sqlalchemy as sa
from alembic import op

revision = "0006_account_email"
down_revision = "0005_rate_limits"
branch_labels = None
depends_on = None


def upgrade():
    # Existing users keep working: no address, unverified. (ADD COLUMN works in
    # place on SQLite too: no table copy.)
    op.add_column("users", sa.Column("email", sa.String(length=254), nullable=True))
    op.add_column(
        "users",
        sa.Column("email_verified", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("users", sa.Column("pending_email", sa.String(length=254), nullable=True))
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)
    op.create_table(
        "one_time_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_one_time_tokens_user_id", "one_time_tokens", ["user_id"])
    op.create_index("ix_one_time_tokens_expires_at", "one_time_tokens", ["expires_at"])


def downgrade():
    op.drop_table("one_time_tokens")
    op.drop_index("uq_users_email_lower", table_name="users")
    # SQLite drops columns by copying the table, which cannot carry an
    # expression index: the username index is dropped first and made again.
    op.drop_index("uq_users_username_lower", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("pending_email")
        batch.drop_column("email_verified")
        batch.drop_column("email")
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)
