"""The jobs: the stage and backup containers (contract, launch, the data root's ownership), the pipeline,
snapshot sets, restores, rebuild, secret rotation, the schedule and the jobs' metrics. Imports the rooms below
it (engine, machine, services), never dr/drills/."""
