-- Organisation, officers and their API tokens.
CREATE TABLE cities
(
    code text PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE counties
(
    code      text PRIMARY KEY,
    city_code text NOT NULL REFERENCES cities (code),
    name      text NOT NULL
);

CREATE TABLE stations
(
    code        text PRIMARY KEY,
    county_code text NOT NULL REFERENCES counties (code),
    name        text NOT NULL
);

CREATE TABLE officers
(
    id           text PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('household_officer', 'community_officer', 'case_officer', 'station_leader')),
    station_code text NOT NULL REFERENCES stations (code)
);

-- Only the SHA-256 of a token is stored; the token itself is shown once, when it is created.
CREATE TABLE api_tokens
(
    token_sha256 text PRIMARY KEY,
    officer_id   text        NOT NULL REFERENCES officers (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- Idempotency keys of submissions: a retry with the same key and body returns the first result.
CREATE TABLE idempotency_keys
(
    officer_id     text        NOT NULL,
    key            text        NOT NULL,
    request_sha256 text        NOT NULL,
    application_id text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (officer_id, key)
);

-- Certificate numbers are drawn from one sequence, so they are unique across stations.
CREATE SEQUENCE certificate_number_seq AS bigint;
