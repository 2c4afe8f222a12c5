-- Supervision: findings of the detectors, each citing the events that prove it, and the
-- per-case state the detectors read. Both are a projection of the event log (checkpoint
-- `supervision` in projection_checkpoints, stored in the same transaction as these rows), so
-- `zhengming rebuild` empties and refills them.

-- The state of one application or exchange request as the detectors need it, as JSON.
CREATE TABLE supervision_cases
(
    aggregate_type text  NOT NULL,
    aggregate_id   text  NOT NULL,
    state          jsonb NOT NULL,
    -- Last day of an open deadline (promised date or feedback deadline); NULL once the case is
    -- closed or when it has none. The sweep reads only cases past this day.
    due_on         date,
    PRIMARY KEY (aggregate_type, aggregate_id)
);

CREATE INDEX supervision_cases_due ON supervision_cases (due_on) WHERE due_on IS NOT NULL;

-- One finding per rule and case. `evidence` is a JSON array of the cited events, each with
-- aggregate_type, aggregate_id, sequence, global_position and event_type.
CREATE TABLE supervision_findings
(
    aggregate_type text  NOT NULL,
    aggregate_id   text  NOT NULL,
    rule           text  NOT NULL,
    -- Station of an application; NULL for an exchange request.
    station_code   text,
    -- City or county code of an exchange request; NULL for an application.
    unit_code      text,
    -- The officer whose act or omission the finding concerns.
    officer_id     text  NOT NULL,
    -- The date of the act, or the day after the missed date for a deadline rule.
    occurred_on    date  NOT NULL,
    detail         text  NOT NULL,
    evidence       jsonb NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, rule)
);

CREATE INDEX supervision_findings_station ON supervision_findings (station_code, occurred_on);
CREATE INDEX supervision_findings_officer ON supervision_findings (officer_id, occurred_on);
