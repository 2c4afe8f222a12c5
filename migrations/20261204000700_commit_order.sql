-- Appends no longer wait for each other. Until now every append took one advisory lock until
-- commit, so that global positions became visible in increasing order; that lock serialised
-- commits and capped the command rate.
--
-- Now each event also records the transaction that wrote it, and readers follow the commit
-- order: transaction id, then global position. A reader takes only events whose transaction
-- id is below the horizon of events_read_horizon(): every transaction of this database below
-- it has ended, and any transaction that commits later has a larger id, so its events sort
-- after everything already read and none is skipped. Events written before this migration
-- keep transaction id 0 and their old order.
--
-- Transaction ids are stored as bigint (the 64-bit `xid8`, which never wraps around, as a
-- number) so that every client can compare them.
ALTER TABLE events
    ADD COLUMN transaction_id bigint NOT NULL DEFAULT 0;

CREATE INDEX events_commit_order ON events (transaction_id, global_position);

CREATE OR REPLACE FUNCTION events_before_insert() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    -- Assigns the transaction id if the transaction has none yet, before the position is
    -- drawn.
    NEW.transaction_id := pg_current_xact_id()::text::bigint;
    NEW.global_position := nextval('events_global_position_seq');
    NEW.recorded_at := clock_timestamp();
    RETURN NEW;
END
$$;

-- Returns the transaction id below which every transaction of this database has ended: the
-- oldest one still running here, or the next id to be assigned. Only this database's client
-- sessions count, because only they can write its events, so a long transaction in another
-- database on the server, or an autovacuum worker, does not hold readers back. A reader must
-- call this in a statement before the one that reads the events, so that a transaction that
-- ends in between is visible to the read.
--
-- Sessions show their 32-bit transaction id. Its age behind the next 64-bit id is the
-- difference modulo 2^32; a session that took its id after the snapshot below has an "age"
-- of 2^31 or more (it is newer), and it cannot lower the horizon.
CREATE FUNCTION events_read_horizon() RETURNS bigint
    LANGUAGE sql VOLATILE AS
$$
WITH next AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS id),
     running AS (
         SELECT (next.id - a.backend_xid::text::bigint) & 4294967295 AS age
           FROM next, pg_stat_activity a
          WHERE a.datname = current_database()
            AND a.backend_type = 'client backend'
            AND a.backend_xid IS NOT NULL)
SELECT next.id - coalesce((SELECT max(age) FROM running WHERE age < 2147483648), 0)
  FROM next
$$;

-- A projection's checkpoint is the last event it applied, in commit order.
ALTER TABLE projection_checkpoints
    ADD COLUMN transaction_id bigint NOT NULL DEFAULT 0;
