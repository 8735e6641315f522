"""`invoke fuzz` (dr/drills/fuzz.py): the hostile-input campaign outside pytest, one short round with a fixed seed
in a throwaway database of our images, removed afterwards."""

from common import config
from dr.drills import fuzz
from dr.engine import docker_api


def test_a_fuzz_round_runs_the_campaign_in_a_throwaway_database_and_leaves_nothing(built, tmp_path):
    cfg = config.derive(built, {"instance": "aggr-fuzz", "drill.work_dir": str(tmp_path / "work")})
    result = fuzz.run(cfg, 0, str(tmp_path / "out"), seed=20261207, examples=3)
    assert result.rounds == 1 and result.examples >= 3, result
    assert result.failures == [], result.render()
    assert result.render().startswith(f"fuzz: {result.examples} examples in 1 round(s)")
    assert result.exit_status() == 0
    label = f"{docker_api.INSTANCE_LABEL}=aggr-fuzz-fuzz"
    assert docker_api.client().containers.list(all=True, filters={"label": label}) == []
