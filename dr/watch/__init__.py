"""The watch: what `invoke status` (and later the status page and the metrics) tells the operator at a glance:
the job history's results read back into their types, the status model computed from the history, the state
directories, the journal, the drills, the database and the certificates, and the stall and risk rules on it.
The top room of dr/: it reads every room below it, and nothing below reads it."""
