"""invitation consent: invitation tokens and expiry; every organisation keeps an owner

Invitations now carry the SHA-256 of a single-use token sent by e-mail and an expiry (7 days). Invitations
that existed before have no token: they cannot be accepted until an owner resends them.

A deferred constraint trigger checks at commit that every organisation whose memberships were changed or
deleted in the transaction still has at least one owner (unless the organisation itself was deleted). It
takes the organisation's row lock first, so two transactions that demote each other's owner serialise
here and the second one sees the first's change.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("org_invitations", sa.Column("token_hash", sa.String(length=64), nullable=True))
    op.create_unique_constraint("org_invitations_token_hash_key", "org_invitations", ["token_hash"])
    op.add_column("org_invitations", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE org_invitations SET expires_at = created_at + interval '7 days'")
    op.alter_column("org_invitations", "expires_at", nullable=False)

    op.execute(
        """
        CREATE FUNCTION memberships_keep_an_owner() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- Serialise with every other change to this organisation's owners (the service takes the same lock).
            PERFORM 1 FROM organisations WHERE id = OLD.org_id FOR NO KEY UPDATE;
            IF FOUND AND NOT EXISTS (
                SELECT 1 FROM memberships WHERE org_id = OLD.org_id AND role = 'owner'
            ) THEN
                RAISE EXCEPTION 'organisation % would be left without an owner', OLD.org_id
                    USING ERRCODE = 'check_violation', CONSTRAINT = 'memberships_keep_an_owner';
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE CONSTRAINT TRIGGER memberships_keep_an_owner
            AFTER UPDATE OR DELETE ON memberships
            DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION memberships_keep_an_owner()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER memberships_keep_an_owner ON memberships")
    op.execute("DROP FUNCTION memberships_keep_an_owner()")
    op.drop_column("org_invitations", "expires_at")
    op.drop_constraint("org_invitations_token_hash_key", "org_invitations", type_="unique")
    op.drop_column("org_invitations", "token_hash")
