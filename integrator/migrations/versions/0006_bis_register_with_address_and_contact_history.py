"""bis register with address and contact history

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bis_persons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("insz", sa.String(length=11), nullable=False),
        sa.Column("identity_key", sa.String(length=64), nullable=False),
        sa.Column("last_name", sa.String(length=200), nullable=False),
        sa.Column("first_names", sa.String(length=200), nullable=False),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("birth_month", sa.Integer(), nullable=True),
        sa.Column("birth_day", sa.Integer(), nullable=True),
        sa.Column("gender", sa.String(length=1), nullable=True),
        sa.Column("nationality", sa.String(length=3), nullable=False),
        sa.Column("evidence_type", sa.String(length=40), nullable=False),
        sa.Column("evidence_number", sa.String(length=60), nullable=False),
        sa.Column("evidence_country", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.Column("created_ticket", sa.String(length=48), nullable=False),
        sa.Column("message_id", sa.String(length=100), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["organisations.id"], name=op.f("fk_bis_persons_created_by_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bis_persons")),
        sa.UniqueConstraint("created_by", "message_id", name=op.f("uq_bis_persons_created_by")),
        sa.UniqueConstraint("identity_key", name=op.f("uq_bis_persons_identity_key")),
        sa.UniqueConstraint("insz", name=op.f("uq_bis_persons_insz")),
    )
    op.create_table(
        "bis_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("street", sa.String(length=200), nullable=False),
        sa.Column("house_number", sa.String(length=20), nullable=False),
        sa.Column("postcode", sa.String(length=20), nullable=False),
        sa.Column("municipality", sa.String(length=200), nullable=False),
        sa.Column("country", sa.String(length=3), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=False),
        sa.Column("ticket", sa.String(length=48), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["bis_persons.id"], name=op.f("fk_bis_addresses_person_id_bis_persons")),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["organisations.id"], name=op.f("fk_bis_addresses_recorded_by_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bis_addresses")),
    )
    with op.batch_alter_table("bis_addresses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bis_addresses_person_id"), ["person_id"], unique=False)

    op.create_table(
        "bis_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=False),
        sa.Column("ticket", sa.String(length=48), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["bis_persons.id"], name=op.f("fk_bis_contacts_person_id_bis_persons")),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["organisations.id"], name=op.f("fk_bis_contacts_recorded_by_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bis_contacts")),
    )
    with op.batch_alter_table("bis_contacts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bis_contacts_person_id"), ["person_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bis_contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bis_contacts_person_id"))

    op.drop_table("bis_contacts")
    with op.batch_alter_table("bis_addresses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bis_addresses_person_id"))

    op.drop_table("bis_addresses")
    op.drop_table("bis_persons")
