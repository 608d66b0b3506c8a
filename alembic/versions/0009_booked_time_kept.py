"""booked time stays booked: completed, disputed, settled and resolved bookings keep their period

Reviewed by hand (autogenerate mangles exclusion constraints). Issue #12: the exclusion constraint
``ex_bookings_no_overlap`` covered only held/requested/confirmed/in_progress, so a job marked complete before
its slot freed the slot and a second buyer got the same machine time. The constraint now covers every state
of a booking that was not called off: marketplace.bookings.models.BLOCKING (the one source; a test compares
this constraint with it). Lab capacity is counted over the same states by the application.

Existing rows that would violate the wider constraint: a completed/disputed/settled/resolved booking K whose
period overlaps a booking O that was placed after K's completion (the old constraint let O take the time K
no longer blocked). O is the booking a buyer relies on now, so K gives way, exactly as the new explicit
``release`` action does: K's period is shortened to end at its completion time, and further to O's start if
O's blocked period (setup included) begins earlier; it becomes empty if that is not after K's start. Periods
only ever shrink, so no new overlap can arise. Each such booking gets a timeline event (action ``release``,
actor ``system``, the reason below) and an audit-log row with the period before and after: nothing is
released silently. Any overlap left after that (impossible under the old constraint unless rows were edited
by hand) stops the migration with the ids involved, before the constraint is touched; nothing is guessed.

Downgrade restores the narrower constraint (which every row then satisfies); released periods stay
shortened.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Snapshots, not imports: a migration must not change when the application's constants do later.
OLD_BLOCKING = "('held', 'requested', 'confirmed', 'in_progress')"
BLOCKING = "('held', 'requested', 'confirmed', 'in_progress', 'completed', 'settled', 'disputed', 'resolved')"
KEPT = "('completed', 'settled', 'disputed', 'resolved')"
REASON = "Released by migration 0009: the time after this early completion had already been booked again."

RELEASE_REBOOKED_TIME = f"""
WITH targets AS (
    SELECT k.id, k.status, k.period AS old_period,
           tstzrange(lower(k.period),
                     greatest(lower(k.period), least(k.completed_at, min(lower(o.period)))), '[)') AS new_period
      FROM bookings k
      JOIN bookings o
        ON o.asset_id = k.asset_id AND o.id <> k.id AND o.status IN {BLOCKING}
       AND o.period && k.period AND o.created_at >= k.completed_at
     WHERE k.status IN {KEPT} AND k.completed_at IS NOT NULL
     GROUP BY k.id, k.status, k.period, k.completed_at
), released AS (
    UPDATE bookings b SET period = t.new_period, updated_at = now()
      FROM targets t
     WHERE b.id = t.id
 RETURNING b.id
), events AS (
    INSERT INTO booking_events (booking_id, from_status, to_status, action, actor_kind, reason, created_at)
    SELECT t.id, t.status, t.status, 'release', 'system', '{REASON}', now() FROM targets t
)
INSERT INTO audit_log (action, target_type, target_id, before, after, reason, created_at)
SELECT 'booking.release', 'booking', t.id::text,
       jsonb_build_object('blocked_from', lower(t.old_period), 'blocked_until', upper(t.old_period)),
       jsonb_build_object('blocked_from', lower(t.new_period), 'blocked_until', upper(t.new_period)),
       '{REASON}', now()
  FROM targets t JOIN released r ON r.id = t.id
"""

REFUSE_REMAINING_OVERLAPS = f"""
DO $$
DECLARE
    pairs text;
BEGIN
    SELECT string_agg(a.id || ' & ' || b.id, ', ') INTO pairs
      FROM bookings a JOIN bookings b
        ON a.asset_id = b.asset_id AND a.id < b.id AND a.period && b.period
     WHERE a.status IN {BLOCKING} AND b.status IN {BLOCKING};
    IF pairs IS NOT NULL THEN
        RAISE EXCEPTION 'migration 0009: overlapping bookings that no rule can reconcile: %', pairs
            USING HINT = 'Cancel or shorten one booking of each pair by hand, then migrate again.';
    END IF;
END
$$
"""


def upgrade() -> None:
    op.execute("LOCK TABLE bookings IN SHARE ROW EXCLUSIVE MODE")  # no booking is placed meanwhile
    op.execute(RELEASE_REBOOKED_TIME)
    op.execute(REFUSE_REMAINING_OVERLAPS)
    op.execute("ALTER TABLE bookings DROP CONSTRAINT ex_bookings_no_overlap")
    op.execute(
        "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlap "
        f"EXCLUDE USING gist (asset_id WITH =, period WITH &&) WHERE (status IN {BLOCKING})"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE bookings DROP CONSTRAINT ex_bookings_no_overlap")
    op.execute(
        "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlap "
        f"EXCLUDE USING gist (asset_id WITH =, period WITH &&) WHERE (status IN {OLD_BLOCKING})"
    )
