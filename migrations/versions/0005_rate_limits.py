"""rate limits

Revision ID: 0005_rate_limits
Revises: 0004_security_events
Create Date: 2026-11-30

"""

import sqlalchemy as sa
from alembic import op

revision = "0005_rate_limits"
down_revision = "0004_security_events"
branch_labels = None
depends_on = None


def upgrade():
    # Rate-limit counters without Redis (api/web/limit_storage.py): one row per
    # key, its hits in the window that ends at expires_at (seconds since the epoch).
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    # The prune of ended windows.
    op.create_index("ix_rate_limits_expires_at", "rate_limits", ["expires_at"])


def downgrade():
    op.drop_table("rate_limits")
