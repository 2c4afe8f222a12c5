-- Inspectors (督察) supervise stations and may read criminal-record results of any station.
ALTER TABLE officers DROP CONSTRAINT officers_role_check;
ALTER TABLE officers ADD CONSTRAINT officers_role_check
    CHECK (role IN ('household_officer', 'community_officer', 'case_officer', 'station_leader', 'inspector'));

-- The public check of a no-criminal-record certificate reads the issuance event by number.
CREATE INDEX events_record_certificate_number
    ON events ((payload -> 'CertificateIssued' ->> 'certificate_number'))
    WHERE aggregate_type = 'record_check' AND event_type = 'CertificateIssued';
