"""Partial indexes where most rows never match the queries: cheaper writes on every message.

* ``ix_conversations_state_updated`` serves only the agent desk's queries (``state = 'with_agent'``,
  least recently updated first). Indexing every conversation made each turn delete and re-insert
  an entry, because ``updated_at`` changes on every message.
* ``ix_messages_in_reply_to`` is only looked up with a message id (replies to an inbound message,
  and the foreign key's cascade); inbound messages have none.

Both are the same indexes for the rows the queries read. Measured on SQLite with plain ``sqlite3``
(2 messages and one conversation update a turn, 4 turns a transaction, µs a turn): 146 as it was,
139 with the partial conversations index; with updates that keep the state also leaving ``state``
out (gateway.db.store), 123, and 118 with the partial ``in_reply_to`` index too (docs/performance.md).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

WITH_AGENT = sa.text("state = 'with_agent'")
HAS_REPLY_TO = sa.text("in_reply_to IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_conversations_state_updated", table_name="conversations")
    op.create_index("ix_conversations_state_updated", "conversations", ["state", "updated_at"],
                    sqlite_where=WITH_AGENT, postgresql_where=WITH_AGENT)
    op.drop_index("ix_messages_in_reply_to", table_name="messages")
    op.create_index("ix_messages_in_reply_to", "messages", ["in_reply_to"],
                    sqlite_where=HAS_REPLY_TO, postgresql_where=HAS_REPLY_TO)


def downgrade() -> None:
    op.drop_index("ix_messages_in_reply_to", table_name="messages")
    op.create_index("ix_messages_in_reply_to", "messages", ["in_reply_to"])
    op.drop_index("ix_conversations_state_updated", table_name="conversations")
    op.create_index("ix_conversations_state_updated", "conversations", ["state", "updated_at"])
