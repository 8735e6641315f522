"""What runs on a collector beside its archive folder: the publisher of claim checks (docs/broker.md, "The
publisher"). It needs the standard library, pika and common/ only: the collector image copies common/ and this
package, nothing else."""
