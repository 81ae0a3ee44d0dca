-- Valdrix database roles. Run once as a superuser (or an administrator with CREATEROLE);
-- idempotent. valdrix_owner owns the schema and runs migrations; the application connects as
-- valdrix_app, which can never bypass row-level security; valdrix_resolver cannot log in and only
-- owns the few SECURITY DEFINER functions that resolve credentials across tenants.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'valdrix_owner') THEN
        CREATE ROLE valdrix_owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'valdrix_app') THEN
        CREATE ROLE valdrix_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'valdrix_resolver') THEN
        CREATE ROLE valdrix_resolver NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;
-- Migrations hand the credential-resolving functions to valdrix_resolver.
GRANT valdrix_resolver TO valdrix_owner;
