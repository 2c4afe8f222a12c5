-- The application role may append history but never change or remove it. The default privileges
-- of ops/roles.sql grant it every statement on the owner's tables, so take back the ones that
-- alter history from every role but the table's owner. Later migrations call this function for
-- each new append-only table.
CREATE FUNCTION revoke_history_changes(target regclass) RETURNS void
    LANGUAGE plpgsql AS
$$
DECLARE
    grantee text;
BEGIN
    FOR grantee IN
        SELECT DISTINCT acl.grantee::regrole::text
          FROM pg_class c, aclexplode(c.relacl) acl
         WHERE c.oid = target
           AND acl.grantee <> 0
           AND acl.grantee <> c.relowner
           AND acl.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
    LOOP
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %s FROM %s', target, grantee);
    END LOOP;
END
$$;

SELECT revoke_history_changes('events');
