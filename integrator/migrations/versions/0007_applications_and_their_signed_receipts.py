"""applications and their signed receipts

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket", sa.String(length=48), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("official", sa.String(length=11), nullable=False),
        sa.Column("message_id", sa.String(length=100), nullable=False),
        sa.Column("insz", sa.String(length=11), nullable=False),
        sa.Column("file_number", sa.String(length=100), nullable=False),
        sa.Column("institution", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("receipt", sa.Text(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["outbox.id"], name=op.f("fk_applications_delivery_id_outbox")),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_applications_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
        sa.UniqueConstraint("organisation_id", "message_id", name=op.f("uq_applications_organisation_id")),
        sa.UniqueConstraint("ticket", name=op.f("uq_applications_ticket")),
    )
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_applications_insz"), ["insz"], unique=False)
        batch_op.create_index(batch_op.f("ix_applications_official"), ["official"], unique=False)
        batch_op.create_index(batch_op.f("ix_applications_organisation_id"), ["organisation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_applications_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_applications_official"))
        batch_op.drop_index(batch_op.f("ix_applications_insz"))

    op.drop_table("applications")
