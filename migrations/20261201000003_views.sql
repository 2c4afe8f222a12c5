-- Read models built by projections from the event log in global order. Each projection stores
-- its checkpoint in the same transaction as its rows.
CREATE TABLE projection_checkpoints
(
    projection      text PRIMARY KEY,
    global_position bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE application_view
(
    application_id     text PRIMARY KEY,
    station_code       text    NOT NULL,
    matter             text    NOT NULL,
    decision_date      date    NOT NULL,
    policy_version     text,
    rule_id            text,
    outcome            text,
    kind               text,
    principle          text,
    transitional       boolean NOT NULL DEFAULT false,
    in_transition      boolean NOT NULL DEFAULT false,
    overridden         boolean NOT NULL DEFAULT false,
    promised_date      date,
    status             text    NOT NULL,
    explanation        text,
    referral           text,
    certificate_number text,
    closed_on          date,
    last_position      bigint  NOT NULL
);

CREATE INDEX application_view_station ON application_view (station_code, decision_date);

CREATE TABLE certificate_view
(
    certificate_number text PRIMARY KEY,
    application_id     text NOT NULL,
    kind               text NOT NULL,
    station_code       text NOT NULL,
    issued_on          date NOT NULL,
    status             text NOT NULL
);
