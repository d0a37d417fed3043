"""certificates found by key references: issuer and serial, subject key identifier, SHA-1 thumbprint

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 22:00:00

Certificates registered before this revision were kept by fingerprint only; they are found by a
BinarySecurityToken as before, and by the other key references once registered again (kruispunt org add --cert).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("der", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("serial", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("subject_key_identifier", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("thumbprint_sha1", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_certificates_serial"), ["serial"], unique=False)
        batch_op.create_index(batch_op.f("ix_certificates_subject_key_identifier"), ["subject_key_identifier"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_certificates_thumbprint_sha1"), ["thumbprint_sha1"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificates_thumbprint_sha1"))
        batch_op.drop_index(batch_op.f("ix_certificates_subject_key_identifier"))
        batch_op.drop_index(batch_op.f("ix_certificates_serial"))
        batch_op.drop_column("thumbprint_sha1")
        batch_op.drop_column("subject_key_identifier")
        batch_op.drop_column("serial")
        batch_op.drop_column("der")
