"""Backups: the database dump tool now; restic snapshot sets, retention, check and off-site copies next
(issue 4)."""
