"""access management: local administrators, officials' details, grants with reasons and approvals

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 08:30:00

Officials get an e-mail address, a department, who registered them and their last deactivation (the whole history
of these acts is in the audit records). Administrators: the officials the service desk designated as their
organisation's local administrator or co-administrators. Grants get a state (pending-approval, active, ended,
revoked) in place of the active flag, a reason, who granted, approved, ended or revoked them and when; a grant that
ends or is revoked is kept, so the unique (official, service, purpose) constraint goes (at most one open grant per
official, service and purpose is kept by repository/grants.py). The grants that were inactive become revoked ones.
Sensitive services: the service names whose grants wait for a second administrator's approval.

Downgrade keeps, per official, service and purpose, only the newest grant (the unique constraint comes back), and
makes active the ones in effect or ended.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ACTOR = 60  # length of an actor's label: an INSZ, or service-desk:<operator>


def upgrade() -> None:
    with op.batch_alter_table("officials") as batch:
        batch.add_column(sa.Column("email", sa.String(254), nullable=True))
        batch.add_column(sa.Column("department", sa.String(200), nullable=True))
        batch.add_column(sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("registered_by", sa.String(ACTOR), nullable=True))
        batch.add_column(sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deactivated_by", sa.String(ACTOR), nullable=True))
        batch.add_column(sa.Column("deactivation_reason", sa.Text(), nullable=True))

    op.create_table(
        "administrators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("official_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("designated_by", sa.String(ACTOR), nullable=False),
        sa.Column("designated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.String(ACTOR), nullable=True),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"],
                                name=op.f("fk_administrators_organisation_id_organisations")),
        sa.ForeignKeyConstraint(["official_id"], ["officials.id"],
                                name=op.f("fk_administrators_official_id_officials")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_administrators")),
        sa.UniqueConstraint("organisation_id", "official_id", name=op.f("uq_administrators_organisation_id")),
    )
    op.create_index(op.f("ix_administrators_organisation_id"), "administrators", ["organisation_id"])

    op.create_table(
        "sensitive_services",
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("marked_by", sa.String(ACTOR), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("service", name=op.f("pk_sensitive_services")),
    )

    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("status", sa.String(20), nullable=False, server_default="active"))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("granted_by", sa.String(ACTOR), nullable=True))
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("approved_by", sa.String(ACTOR), nullable=True))
        batch.add_column(sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ended_by", sa.String(ACTOR), nullable=True))
        batch.add_column(sa.Column("end_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revoked_by", sa.String(ACTOR), nullable=True))
        batch.add_column(sa.Column("revoke_reason", sa.Text(), nullable=True))
    grants = sa.table("grants", sa.column("active", sa.Boolean()), sa.column("status", sa.String()),
                      sa.column("revoke_reason", sa.Text()))
    op.execute(grants.update().where(grants.c.active == sa.false())
               .values(status="revoked", revoke_reason="inactive before revision 0010"))
    with op.batch_alter_table("grants") as batch:
        batch.drop_constraint("uq_grants_official_id", type_="unique")
        batch.drop_column("active")
        batch.create_index(batch.f("ix_grants_official_id"), ["official_id"])


def downgrade() -> None:
    grants = sa.table("grants", sa.column("id", sa.Integer()), sa.column("official_id", sa.Integer()),
                      sa.column("service", sa.String()), sa.column("purpose", sa.String()),
                      sa.column("status", sa.String()), sa.column("active", sa.Boolean()))
    newest = (sa.select(sa.func.max(grants.c.id))
              .group_by(grants.c.official_id, grants.c.service, grants.c.purpose).scalar_subquery())
    op.execute(grants.delete().where(grants.c.id.not_in(newest)))
    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.execute(grants.update().values(active=grants.c.status.in_(("active", "ended"))))
    with op.batch_alter_table("grants") as batch:
        batch.drop_index(batch.f("ix_grants_official_id"))
        for column in ("revoke_reason", "revoked_by", "revoked_at", "end_reason", "ended_by", "ended_at",
                       "approved_at", "approved_by", "created_at", "granted_by", "reason", "status"):
            batch.drop_column(column)
        batch.create_unique_constraint("uq_grants_official_id", ["official_id", "service", "purpose"])
    op.drop_table("sensitive_services")
    op.drop_index(op.f("ix_administrators_organisation_id"), table_name="administrators")
    op.drop_table("administrators")
    # in place (SQLite >= 3.35 drops a plain column): recreating officials would break the grants' foreign key
    with op.batch_alter_table("officials", recreate="never") as batch:
        for column in ("deactivation_reason", "deactivated_by", "deactivated_at", "registered_by",
                       "registered_at", "department", "email"):
            batch.drop_column(column)
