"""What a host does, by its `host.role` (common/config.py checks the value, and the [db] keys each one
needs): one row a role, read wherever a task does something only some hosts do."""

from __future__ import annotations

from dataclasses import dataclass

from common.config import Config


@dataclass(frozen=True)
class HostRole:
    services: tuple[str, ...]       # the services it runs, in start order
    images: tuple[str, ...] | None  # the images it builds; None: every component
    restores_files: bool            # the state directories of a set
    restores_database: bool         # the database part of a set (its physical copy or dump)
    from_kit: bool                  # its secrets and certificates come from the Aggregator's kit (`invoke
    #                                 db-host-kit`): checked, never made; it takes a rotation up
    runs_pipeline: bool             # the pipeline (and the sample collector) run here
    database_elsewhere: bool        # its database is on another host: the roles change their own passwords,
    #                                 the archive may be newer than a restored database (catch-up)
    publishes_postgres: bool        # PostgreSQL's port published (TLS only), for the other host's sets


ROLES: dict[str, HostRole] = {
    "all": HostRole(services=("postgres", "db", "webmirror"), images=None, restores_files=True,
                    restores_database=True, from_kit=False, runs_pipeline=True,
                    database_elsewhere=False, publishes_postgres=False),
    # Every image: its drills start a throwaway database even though its own is on another host.
    "aggregator": HostRole(services=("webmirror",), images=None, restores_files=True, restores_database=False,
                           from_kit=False, runs_pipeline=True, database_elsewhere=True,
                           publishes_postgres=False),
    # The backup image for its restores.
    "database": HostRole(services=("postgres", "db"), images=("postgres", "db", "backup"), restores_files=False,
                         restores_database=True, from_kit=True, runs_pipeline=False,
                         database_elsewhere=False, publishes_postgres=True),
}


def of(cfg: Config) -> HostRole:
    return ROLES[cfg.host.role]
