"""a BIS person records the official who created the number (their INSZ), for their ListCreatedBisNumbers

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 15:30:00

The numbers created before are given the official of their creating ticket's audit record (committed with the
number, in the same transaction); the index serves one official's list, newest first.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bis_persons") as batch:
        batch.add_column(sa.Column("created_by_official", sa.String(11), nullable=True))
    op.execute("UPDATE bis_persons SET created_by_official = (SELECT a.official FROM audit_records a "
               "WHERE a.ticket = bis_persons.created_ticket AND a.outcome = 'OK')")
    op.create_index("ix_bis_persons_created_by_official", "bis_persons",
                    ["created_by", "created_by_official", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_bis_persons_created_by_official", table_name="bis_persons")
    with op.batch_alter_table("bis_persons") as batch:
        batch.drop_column("created_by_official")
