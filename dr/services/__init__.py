"""The running services: PostgreSQL, the database and the web mirror (stack), the sample collector, the
off-site server, the certificates and the database host's kit. Imports only dr/engine/ and dr/machine/."""
