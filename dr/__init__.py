"""aggregator-dr: host bootstrap, images, rebuild, restore and drills.

Modules here are small and plain; the ones imported inside images (config, runner, log, db, secrets)
depend only on the standard library and pymongo.
"""

__version__ = "0.1.0"
