-- Database roles for a production server, run once by a superuser:
--
--   psql -v owner_password=... -v app_password=... -f ops/roles.sql postgres
--
-- zhengming_owner owns the database and applies the migrations: run the first start and every
-- upgrade with DATABASE_URL naming it (for example `zhengming verify`). zhengming_app is the role
-- the server runs as: it reads and appends events but may not change or remove them, besides the
-- append-only triggers on the events table. With every migration applied, the server does not
-- run the migrator, so it starts as zhengming_app.

CREATE ROLE zhengming_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE zhengming_app LOGIN PASSWORD :'app_password';
CREATE DATABASE zhengming OWNER zhengming_owner;

\connect zhengming

-- Only the owner creates objects; the application uses them.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO zhengming_app;

-- Tables and sequences the owner's migrations create, now and in later versions.
ALTER DEFAULT PRIVILEGES FOR ROLE zhengming_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO zhengming_app;
ALTER DEFAULT PRIVILEGES FOR ROLE zhengming_owner IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO zhengming_app;
