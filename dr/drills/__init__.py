"""The drills: the restore drill and its throwaway sandbox, the runbook drills on bare hosts (one or two), their
reports, the reports they feed, and the hostile-input campaign's rounds. Below dr/watch/ only."""
