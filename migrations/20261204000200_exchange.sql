-- Information exchange: the population register the verification reads, and the per-subject
-- rows of exchange requests. The events of each request record the digests and counts that pin
-- these rows down (see docs/exchange.md); the rows themselves are not events.

-- Stand-in for the provincial population system, loaded from CSV by `zhengming population`.
-- Every field is text in the stored form that aggregates::exchange::register documents.
CREATE TABLE population_register
(
    id_number           text PRIMARY KEY,
    name                text NOT NULL,
    former_name         text NOT NULL,
    sex                 text NOT NULL CHECK (sex IN ('male', 'female')),
    ethnicity           text NOT NULL,
    date_of_birth       text NOT NULL,
    place_of_birth      text NOT NULL,
    native_place        text NOT NULL,
    registered_address  text NOT NULL,
    household_moves     text NOT NULL,
    registration_status text NOT NULL CHECK (registration_status IN ('active', 'cancelled', 'deceased')),
    criminal_record     text NOT NULL CHECK (criminal_record IN ('none', 'recorded'))
);

-- Accepted subject rows of a request: the line of the uploaded CSV, the ID number and the
-- claimed values as a JSON array of strings, in the order of the request's items without
-- id_number.
CREATE TABLE exchange_subjects
(
    request_id text   NOT NULL,
    line       bigint NOT NULL,
    id_number  text   NOT NULL,
    claimed    jsonb  NOT NULL,
    PRIMARY KEY (request_id, line)
);

-- Verification outcome per subject: one of match, mismatch or not_found per requested item,
-- in the order of the request's items.
CREATE TABLE exchange_results
(
    request_id text   NOT NULL,
    line       bigint NOT NULL,
    id_number  text   NOT NULL,
    outcomes   text[] NOT NULL,
    PRIMARY KEY (request_id, line)
);

-- Recorded rows never change; a row set whose event was not recorded may still be deleted.
CREATE FUNCTION exchange_rows_reject_update() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'exchange rows are pinned by event digests: UPDATE on % is not allowed', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER exchange_subjects_no_update
    BEFORE UPDATE ON exchange_subjects
    FOR EACH ROW EXECUTE FUNCTION exchange_rows_reject_update();

CREATE TRIGGER exchange_results_no_update
    BEFORE UPDATE ON exchange_results
    FOR EACH ROW EXECUTE FUNCTION exchange_rows_reject_update();

-- Registration numbers of filed requests are drawn from one sequence.
CREATE SEQUENCE exchange_registration_seq AS bigint;
