"""The staged pipeline: raw -> staging -> reports -> archive (and quarantine), one module per stage.

Not built yet: see issue 3 (sync, sanitize, importer). The state directory names are fixed here so that
every part of the project (snapshots, restore, webmirror) agrees on them.
"""

STATE_DIRS = ("raw", "staging", "reports", "archive", "quarantine", "originals")
