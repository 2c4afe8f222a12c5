-- The event log. The first seven columns are the ones postgres-es reads and writes; the rest
-- are filled by the trigger below and never named by postgres-es.
CREATE TABLE events
(
    aggregate_type  text                         NOT NULL,
    aggregate_id    text                         NOT NULL,
    sequence        bigint CHECK (sequence >= 0) NOT NULL,
    event_type      text                         NOT NULL,
    event_version   text                         NOT NULL,
    payload         json                         NOT NULL,
    metadata        json                         NOT NULL,
    -- Position in the one total order of all events; see events_before_insert.
    global_position bigint                       NOT NULL UNIQUE,
    -- Database time at which the row was written.
    recorded_at     timestamptz                  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE SEQUENCE events_global_position_seq AS bigint;

-- Assigns the global position under a transaction-scoped advisory lock. The lock is held until
-- commit, so appends are serialised and a position becomes visible only after every smaller
-- one has committed or rolled back: a reader that follows positions never skips a late commit.
-- Rolled-back transactions leave gaps that are never filled.
CREATE FUNCTION events_before_insert() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('zhengming.events.append'));
    NEW.global_position := nextval('events_global_position_seq');
    NEW.recorded_at := clock_timestamp();
    RETURN NEW;
END
$$;

CREATE TRIGGER events_assign_position
    BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_before_insert();

-- History is append-only.
CREATE FUNCTION events_reject_change() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'events are append-only: % on events is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();
