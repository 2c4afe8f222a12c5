-- The application role may append events but never change or remove them. The default
-- privileges of ops/roles.sql grant it every statement on the owner's tables, so take back the
-- ones that alter history from every role but the owner.
DO
$$
DECLARE
    grantee text;
BEGIN
    FOR grantee IN
        SELECT DISTINCT acl.grantee::regrole::text
          FROM pg_class c, aclexplode(c.relacl) acl
         WHERE c.oid = 'events'::regclass
           AND acl.grantee <> 0
           AND acl.grantee <> c.relowner
           AND acl.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE')
    LOOP
        EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON events FROM %s', grantee);
    END LOOP;
END
$$;
