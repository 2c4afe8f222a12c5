-- The leaves of the global ledger's Merkle tree, one per event in global order, written by the
-- sealer. Checkpoints (events of the `ledger` aggregate) sign the tree's roots; this table keeps
-- each leaf's hash and the event it was computed from, so that proofs can be built without
-- rereading every event, and so that verification can name which event changed after sealing.
CREATE TABLE ledger_leaves
(
    leaf_index      bigint PRIMARY KEY CHECK (leaf_index >= 0),
    global_position bigint NOT NULL UNIQUE,
    aggregate_type  text   NOT NULL,
    aggregate_id    text   NOT NULL,
    sequence        bigint NOT NULL,
    leaf_hash       bytea  NOT NULL CHECK (length(leaf_hash) = 32)
);

CREATE FUNCTION ledger_leaves_reject_change() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'ledger leaves are append-only: % on ledger_leaves is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER ledger_leaves_no_update_or_delete
    BEFORE UPDATE OR DELETE ON ledger_leaves
    FOR EACH ROW EXECUTE FUNCTION ledger_leaves_reject_change();

CREATE TRIGGER ledger_leaves_no_truncate
    BEFORE TRUNCATE ON ledger_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_leaves_reject_change();

SELECT revoke_history_changes('ledger_leaves');
