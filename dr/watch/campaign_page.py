"""The status page as the hostile-input campaign (campaign/) sees it: for a data root and the stage runs on it,
the page that the status model of that data root, with a history of just those runs, renders (the database not
probed), as the web mirror would publish it. The campaign looks through it for the probe IP
(campaign/invariants.py, invariant 5); `invoke fuzz` and tests/integration/test_campaign.py give it this."""

from __future__ import annotations

import datetime as dt
import tempfile

from campaign import invariants
from common import config
from common.config import Config
from common.records import RecordError
from dr.jobs import history
from dr.jobs.pipeline import PipelineRun
from dr.watch import model, page, rules
from stages.cli import Summary
from stages.layout import DataRoot

PAGE = "status/index.html"


def stage_result(run: invariants.StageRun) -> PipelineRun | None:
    """A stage run as the history keeps a `stage-<name>` job's result: the Summary it printed, in a PipelineRun;
    None when it printed none (it crashed)."""
    try:
        return PipelineRun([Summary.from_json(run.stdout)])
    except RecordError:
        return None


def status_page(cfg: Config) -> invariants.Pages:
    """invariants.Pages for cfg's instance: {PAGE: the page's HTML}."""

    def pages(dr: DataRoot, runs: list[invariants.StageRun]) -> dict[str, str]:
        with tempfile.TemporaryDirectory(prefix="campaign-history-") as folder:
            pcfg = config.derive(cfg, {"data_root": str(dr.root), "history.dir": folder, "status.page_dir": ""})
            now = dt.datetime.now(dt.timezone.utc)
            for r in runs:
                result = stage_result(r)
                history.append(pcfg, history.run_of(
                    f"stage-{r.stage}", now - dt.timedelta(seconds=r.seconds), now, result,
                    error=None if result is not None else r.stderr[-2000:]))
            m = model.compute(pcfg, now, probe=False)
            return {PAGE: page.render(m, rules.evaluate(m, pcfg), pcfg)}

    return pages
