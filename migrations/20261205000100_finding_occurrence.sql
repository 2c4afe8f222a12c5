-- A rule about a single act, such as a read of personal data, has one finding per act, so that
-- two officers who each read a case without cause are both found. `occurrence` names the act by
-- the aggregate type and sequence of its event (`application_reads#2`). Rules about the state of
-- a case keep one finding per case and rule, with an empty occurrence.
ALTER TABLE supervision_findings ADD COLUMN occurrence text NOT NULL DEFAULT '';
ALTER TABLE supervision_findings DROP CONSTRAINT supervision_findings_pkey;
ALTER TABLE supervision_findings ADD PRIMARY KEY (aggregate_type, aggregate_id, rule, occurrence);
