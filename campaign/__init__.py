"""The hostile-input campaign (issue 9, item 4): hypothesis strategies for hostile legacy reports
(`hostile`), every textual form of a probe IP (`ipforms`), the invariants checked after running the real
stages on them (`invariants`), and the campaign's runs against a database it is given (`rounds`). `invoke
fuzz` (dr/drills/fuzz.py) runs it round after round with fresh seeds in a throwaway database;
tests/integration/test_campaign.py runs it in the tests' database, and tests/unit/stages/test_hostile_examples.py
runs the fixed reproducers through the sanitizer.

Between snapshots/ and dr/ in the layers: it runs the stages (as subprocesses) and reads the data root and the
database; nothing in an image needs it."""

from hypothesis import HealthCheck, Phase, settings


def register_profiles() -> None:
    """`ci` (the tests' default): derandomized (the same examples every run), 60 examples of 1 to 5 inputs
    (about 1.5 s each, so about 1.5 minutes on 2 cores: CI's warm run stays under 30 minutes), no shrinking
    (a failure is reported as found, in bounded time); `fuzz`: random (a seed per run), 40 examples per run,
    shrinking (a minimal reproducer), run again and again with fresh seeds by `invoke fuzz`."""
    common = dict(deadline=None, database=None, print_blob=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                         HealthCheck.large_base_example, HealthCheck.filter_too_much])
    settings.register_profile("ci", max_examples=60, derandomize=True,
                              phases=[Phase.explicit, Phase.reuse, Phase.generate], **common)
    settings.register_profile("fuzz", max_examples=40, derandomize=False,
                              phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
                              **common)
