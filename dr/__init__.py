"""aggregator-dr's top layer: the host. Six rooms, each importing only the rooms below it:
engine <- machine <- services <- jobs <- drills <- watch (docs/architecture.md, tests/unit/test_layers.py).

Runs only on the host (it imports the Docker SDK); no image copies it. It builds on common/, stages/,
snapshots/ and campaign/, which never import it.
"""
