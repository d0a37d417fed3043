"""national register update proposals

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=48), nullable=False),
        sa.Column("proposer_id", sa.Integer(), nullable=False),
        sa.Column("proposer_official", sa.String(length=11), nullable=False),
        sa.Column("message_id", sa.String(length=100), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("insz", sa.String(length=11), nullable=False),
        sa.Column("field", sa.String(length=20), nullable=False),
        sa.Column("proposed_value", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("document_name", sa.String(length=200), nullable=True),
        sa.Column("document_type", sa.String(length=100), nullable=True),
        sa.Column("document", sa.LargeBinary(), nullable=True),
        sa.Column("competent_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_ticket", sa.String(length=48), nullable=True),
        sa.Column("decided_by", sa.String(length=11), nullable=True),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("update_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["competent_id"], ["organisations.id"], name=op.f("fk_proposals_competent_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["proposer_id"], ["organisations.id"], name=op.f("fk_proposals_proposer_id_organisations")
        ),
        sa.ForeignKeyConstraint(["update_id"], ["outbox.id"], name=op.f("fk_proposals_update_id_outbox")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposals")),
        sa.UniqueConstraint("proposer_id", "message_id", name=op.f("uq_proposals_proposer_id")),
        sa.UniqueConstraint("reference", name=op.f("uq_proposals_reference")),
    )
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_proposals_competent_id"), ["competent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_proposals_insz"), ["insz"], unique=False)
        batch_op.create_index(batch_op.f("ix_proposals_proposer_id"), ["proposer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_proposals_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_proposals_submitted_at"), ["submitted_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proposals_submitted_at"))
        batch_op.drop_index(batch_op.f("ix_proposals_state"))
        batch_op.drop_index(batch_op.f("ix_proposals_proposer_id"))
        batch_op.drop_index(batch_op.f("ix_proposals_insz"))
        batch_op.drop_index(batch_op.f("ix_proposals_competent_id"))

    op.drop_table("proposals")
