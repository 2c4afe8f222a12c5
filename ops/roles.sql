-- Database roles for a production server. The migration owner creates the schema; the
-- application role may append events but has no right to change or remove them, in addition to
-- the append-only triggers on the events table.
--
--   psql -v app_password="'...'" -f ops/roles.sql zhengming

CREATE ROLE zhengming_owner NOLOGIN;
CREATE ROLE zhengming_app LOGIN PASSWORD :app_password;

GRANT CONNECT ON DATABASE zhengming TO zhengming_app;
GRANT USAGE ON SCHEMA public TO zhengming_app;

-- Run after the first start has applied the migrations as zhengming_owner.
GRANT SELECT, INSERT ON events TO zhengming_app;
REVOKE UPDATE, DELETE, TRUNCATE ON events FROM zhengming_app;
GRANT SELECT, INSERT, UPDATE ON projection_checkpoints, application_view, certificate_view TO zhengming_app;
GRANT SELECT, INSERT, UPDATE ON cities, counties, stations, officers, api_tokens, idempotency_keys TO zhengming_app;
GRANT USAGE ON SEQUENCE events_global_position_seq, certificate_number_seq TO zhengming_app;
-- The sealer appends Merkle leaves; like events, they are never changed.
GRANT SELECT, INSERT ON ledger_leaves TO zhengming_app;
REVOKE UPDATE, DELETE, TRUNCATE ON ledger_leaves FROM zhengming_app;
