"""The outbox: messages sent outside a request, waiting for a recipient (REST polling, web chat pending).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# Frozen copies of the types at this revision (migrations never import the live models).
TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "outbox",
        # AUTOINCREMENT on SQLite: a deleted maximum is never reused, so old cursors stay meaningful.
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.Column("touched_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_outbox"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbox_recipient", "outbox", ["channel", "recipient", "seq"])
    op.create_index("ix_outbox_touched_at", "outbox", ["touched_at"])


def downgrade() -> None:
    op.drop_table("outbox")
