-- The roles FerretDB's clients log in as, and what PostgreSQL lets each do (applied at every start by
-- entrypoint.sh, as the superuser over the socket; idempotent). FerretDB 1.x passes each client's own
-- user name and password through to PostgreSQL, so these grants are what the database enforces:
--   owner     creates and drops collections and indexes (rebuild, restores); owns every table
--   importer  reads and writes documents in existing collections; cannot create or drop a collection
--   reader    reads (web side, status, drills' queries)
--   backup    reads, and may stream a physical copy (REPLICATION, for pg_basebackup)
-- Tables that owner creates later get the same grants (ALTER DEFAULT PRIVILEGES).
\set owner_pw `cat :'secrets'/owner`
\set importer_pw `cat :'secrets'/importer`
\set reader_pw `cat :'secrets'/reader`
\set backup_pw `cat :'secrets'/backup`

SELECT format('CREATE ROLE %I', r) FROM unnest(ARRAY['owner', 'importer', 'reader', 'backup']) AS r
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec
ALTER ROLE owner    LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'owner_pw';
ALTER ROLE importer LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'importer_pw';
ALTER ROLE reader   LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'reader_pw';
ALTER ROLE backup   LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE REPLICATION   PASSWORD :'backup_pw';
\unset owner_pw
\unset importer_pw
\unset reader_pw
\unset backup_pw

SELECT format('CREATE DATABASE %I OWNER owner', :'pgdb')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'pgdb') \gexec
\connect :"pgdb"
REVOKE ALL ON DATABASE :"pgdb" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"pgdb" TO importer, reader, backup;
GRANT ALL ON DATABASE :"pgdb" TO owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Later: whatever owner creates.
ALTER DEFAULT PRIVILEGES FOR ROLE owner GRANT USAGE ON SCHEMAS TO importer, reader, backup;
ALTER DEFAULT PRIVILEGES FOR ROLE owner GRANT SELECT ON TABLES TO reader, backup;
ALTER DEFAULT PRIVILEGES FOR ROLE owner GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO importer;
ALTER DEFAULT PRIVILEGES FOR ROLE owner GRANT USAGE, SELECT ON SEQUENCES TO importer, reader, backup;

-- Now: what exists already (a restored copy, a database made before these grants).
SELECT format('GRANT USAGE ON SCHEMA %I TO importer, reader, backup', nspname),
       format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO reader, backup', nspname),
       format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO importer', nspname)
  FROM pg_namespace WHERE nspowner = 'owner'::regrole \gexec
