"""audit records say by which channel the transaction came: soap, portal or cli

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 09:00:00

The records so far all came as signed SOAP envelopes: the column's default says so. On PostgreSQL the column is
added to the partitioned table, and with it to every partition; the default is a constant, so no row is
rewritten.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_records") as batch:
        batch.add_column(sa.Column("channel", sa.String(10), nullable=False, server_default="soap"))


def downgrade() -> None:
    with op.batch_alter_table("audit_records") as batch:
        batch.drop_column("channel")
