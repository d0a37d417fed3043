"""portal: officials' fallback credentials, log-on attempts, sessions kept in the database

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 08:30:00

Four new tables, nothing existing changes: the credentials (user number, argon2 password hash, the token's kind and
TOTP secret), the code cards' hashed codes, the throttling of failed log-ons per user number and client address,
and the portal's sessions (anonymous until log-on). Downgrading drops them: every official is logged off and must
be issued credentials again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_credentials",
        sa.Column("official_id", sa.Integer(), nullable=False),
        sa.Column("user_number", sa.String(length=12), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("token_kind", sa.String(length=8), nullable=False),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["official_id"], ["officials.id"], ondelete="CASCADE",
                                name=op.f("fk_portal_credentials_official_id_officials")),
        sa.PrimaryKeyConstraint("official_id", name=op.f("pk_portal_credentials")),
        sa.UniqueConstraint("user_number", name=op.f("uq_portal_credentials_user_number")),
    )
    op.create_table(
        "portal_card_codes",
        sa.Column("official_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["official_id"], ["officials.id"], ondelete="CASCADE",
                                name=op.f("fk_portal_card_codes_official_id_officials")),
        sa.PrimaryKeyConstraint("official_id", "position", name=op.f("pk_portal_card_codes")),
    )
    op.create_table(
        "portal_throttles",
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_portal_throttles")),
    )
    op.create_table(
        "portal_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("official_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=12), nullable=True),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("challenge_user", sa.String(length=12), nullable=True),
        sa.Column("challenge_position", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["official_id"], ["officials.id"], ondelete="CASCADE",
                                name=op.f("fk_portal_sessions_official_id_officials")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_sessions")),
    )
    with op.batch_alter_table("portal_sessions") as batch:
        batch.create_index(batch.f("ix_portal_sessions_official_id"), ["official_id"], unique=False)
        batch.create_index(batch.f("ix_portal_sessions_last_seen_at"), ["last_seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("portal_sessions") as batch:
        batch.drop_index(batch.f("ix_portal_sessions_last_seen_at"))
        batch.drop_index(batch.f("ix_portal_sessions_official_id"))
    op.drop_table("portal_sessions")
    op.drop_table("portal_throttles")
    op.drop_table("portal_card_codes")
    op.drop_table("portal_credentials")
