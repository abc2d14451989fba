"""oauth clients

Revision ID: 0011_oauth_clients
Revises: 0010_personal_access_tokens
Create Date: 2026-12-01

"""

import sqlalchemy as sa
from alembic import op

revision = "0011_oauth_clients"
down_revision = "0010_personal_access_tokens"
branch_labels = None
depends_on = None


def upgrade():
    # api/oauth/clients.py: other services (client credentials); secrets kept as hashes.
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("secret_rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("client_id"),
    )


def downgrade():
    op.drop_table("oauth_clients")
