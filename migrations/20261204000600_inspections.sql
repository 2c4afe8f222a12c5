-- Inspections, training records and problem reports as the supervision views read them. All
-- are a projection of the event log (checkpoint `inspections` in projection_checkpoints, stored
-- in the same transaction as these rows), so `zhengming rebuild` empties and refills them.

-- Officers of the provincial office answer the problems stations report.
ALTER TABLE officers DROP CONSTRAINT officers_role_check;
ALTER TABLE officers ADD CONSTRAINT officers_role_check
    CHECK (role IN ('household_officer', 'community_officer', 'case_officer', 'station_leader', 'inspector',
                    'provincial_officer'));

CREATE TABLE inspections
(
    inspection_id text PRIMARY KEY,
    body          text NOT NULL,
    target_kind   text NOT NULL,
    target_id     text NOT NULL,
    station_code  text NOT NULL,
    opened_by     text NOT NULL,
    reason        text NOT NULL,
    opened_on     date NOT NULL,
    status        text NOT NULL,
    notices       int  NOT NULL DEFAULT 0,
    -- The accountability decision, once closed.
    outcome       text,
    accountable   text[] NOT NULL DEFAULT '{}',
    closed_on     date
);

CREATE INDEX inspections_station ON inspections (station_code, opened_on);

-- Findings an inspection recorded, from a detector or by hand.
CREATE TABLE inspection_findings
(
    inspection_id text NOT NULL,
    number        int  NOT NULL,
    station_code  text NOT NULL,
    category      text NOT NULL,
    rule          text,
    case_id       text,
    officer_id    text,
    description   text NOT NULL,
    found_on      date NOT NULL,
    PRIMARY KEY (inspection_id, number)
);

CREATE INDEX inspection_findings_officer ON inspection_findings (officer_id, found_on);

-- Notices (通报) published by inspections.
CREATE TABLE inspection_notices
(
    inspection_id text NOT NULL,
    number        int  NOT NULL,
    station_code  text NOT NULL,
    text          text NOT NULL,
    published_on  date NOT NULL,
    PRIMARY KEY (inspection_id, number)
);

-- One row per rectification round. `status` is required, reported, accepted or rejected.
CREATE TABLE rectifications
(
    inspection_id text NOT NULL,
    round         int  NOT NULL,
    station_code  text NOT NULL,
    requirement   text NOT NULL,
    required_on   date NOT NULL,
    due_on        date NOT NULL,
    reported_on   date,
    verified_on   date,
    status        text NOT NULL,
    PRIMARY KEY (inspection_id, round)
);

CREATE INDEX rectifications_station ON rectifications (station_code, required_on);

CREATE TABLE training_records
(
    officer_id     text NOT NULL,
    policy_version text NOT NULL,
    station_code   text NOT NULL,
    course         text NOT NULL,
    completed_on   date NOT NULL,
    recorded_by    text NOT NULL,
    PRIMARY KEY (officer_id, policy_version)
);

CREATE TABLE problem_reports
(
    report_id       text PRIMARY KEY,
    station_code    text NOT NULL,
    reporter        text NOT NULL,
    matter          text,
    situation       text NOT NULL,
    reported_on     date NOT NULL,
    status          text NOT NULL,
    acknowledged_on date,
    answer          text,
    policy_version  text,
    answered_on     date
);

-- The accountability trail lists an officer's acts from the log itself.
CREATE INDEX events_actor ON events ((metadata ->> 'actor'), recorded_at);
