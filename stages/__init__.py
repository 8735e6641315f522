"""The staged pipeline: raw -> staging -> reports -> archive (and quarantine), one module per stage.

Shared pieces: layout (the data root and its state directories), journal (the append-only record of every
move, with transactions), lock (shared for stages, exclusive for snapshots), stage (the start of every stage
run), cli (arguments, exit codes and summaries common to every stage). Durable writes and moves are
common/atomic.
"""
