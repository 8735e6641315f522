"""Backups, run in the backup image: snapshot sets in restic (the files, PostgreSQL's physical copy, the
portable dump and a manifest), retention, check, restore, off-site copies, and the database dump tool
(`snapshots.cli` is the entry point; docs/snapshots.md)."""
