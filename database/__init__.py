"""The database, just above common/: connecting to FerretDB as a role (db), the collections and indexes the
importer keeps (schema), PostgreSQL through psql (pgsql) and its roles' SCRAM verifiers (pgroles). Nothing here
is about backups or the pipeline; stages/, snapshots/ and dr/ build on it."""
