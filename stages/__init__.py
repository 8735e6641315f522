"""The staged pipeline: raw -> staging -> reports -> archive (and quarantine), one module per stage.

Shared pieces: layout (the data root and its state directories), atomic (durable writes and moves),
journal (the append-only record of every move, with transactions), lock (shared for stages, exclusive for
snapshots), cli (arguments, exit codes and summaries common to every stage).
"""
