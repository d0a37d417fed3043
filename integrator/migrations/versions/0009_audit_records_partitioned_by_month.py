"""audit records partitioned by month on PostgreSQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:00:00

On PostgreSQL audit_records becomes a table partitioned by range of received_at, one partition per calendar month
(UTC, audit_records_pYYYYMM) and a default partition (audit_records_default). A primary key of a partitioned table
must hold the partition key, so it is (ticket, received_at); ticket stays its first column, so a record is still
found by its ticket alone (one index probe per partition). The partitions made cover every month of the existing
records (of the last ten years; older ones go to the default partition) and the current month with the three
after it; the maintenance step (integrator/maintenance.py) keeps making the coming ones. The existing records are
copied over in this migration's transaction, and the old table is dropped: on a large table, plan for the time
(bench/README.md, "bench/growth.py", has a measured rate). Downgrade copies them back into a plain table; monthly
tables that retention detached are left as they are.

SQLite keeps its plain table: nothing changes there.
"""

from datetime import UTC, datetime

from alembic import op
from sqlalchemy import text

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

AHEAD = 3  # months made after the current one
BACK = 120  # older records than this many months go to the default partition, not to a month of their own
OLD = "audit_records_unpartitioned"


def _month(moment: datetime, months: int = 0) -> datetime:
    moment = moment.astimezone(UTC)
    index = moment.year * 12 + moment.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE audit_records RENAME TO {OLD}")
    op.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT pk_audit_records TO pk_{OLD}")
    op.execute(f"ALTER INDEX ix_audit_records_organisation RENAME TO ix_{OLD}_organisation")
    op.execute(f"ALTER INDEX ix_audit_records_person RENAME TO ix_{OLD}_person")
    op.execute(f"CREATE TABLE audit_records (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
               "PARTITION BY RANGE (received_at)")
    op.execute("ALTER TABLE audit_records ADD CONSTRAINT pk_audit_records PRIMARY KEY (ticket, received_at)")
    op.execute("CREATE INDEX ix_audit_records_organisation ON audit_records (organisation)")
    op.execute("CREATE INDEX ix_audit_records_person ON audit_records (person)")
    now = datetime.now(UTC)
    oldest = op.get_bind().execute(text(f"SELECT min(received_at) FROM {OLD}")).scalar()
    month, last = max(_month(min(oldest or now, now)), _month(now, -BACK)), _month(now, AHEAD)
    while month <= last:
        after = _month(month, 1)
        op.execute(f"CREATE TABLE audit_records_p{month:%Y%m} PARTITION OF audit_records "
                   f"FOR VALUES FROM ('{month.isoformat()}') TO ('{after.isoformat()}')")
        month = after
    op.execute("CREATE TABLE audit_records_default PARTITION OF audit_records DEFAULT")
    op.execute(f"INSERT INTO audit_records SELECT * FROM {OLD}")
    op.execute(f"DROP TABLE {OLD}")
    op.execute("ANALYZE audit_records")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE TABLE {OLD} (LIKE audit_records INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    op.execute(f"INSERT INTO {OLD} SELECT * FROM audit_records")
    op.execute("DROP TABLE audit_records")  # with its partitions
    op.execute(f"ALTER TABLE {OLD} RENAME TO audit_records")
    op.execute("ALTER TABLE audit_records ADD CONSTRAINT pk_audit_records PRIMARY KEY (ticket)")
    op.execute("CREATE INDEX ix_audit_records_organisation ON audit_records (organisation)")
    op.execute("CREATE INDEX ix_audit_records_person ON audit_records (person)")
