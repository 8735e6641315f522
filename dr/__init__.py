"""aggregator-dr's top layer: the host. Bootstrap, images, services, rebuild, restore, drills.

Runs only on the host (it imports the Docker SDK); no image copies it. It builds on common/, stages/ and
snapshots/, which never import it.
"""
