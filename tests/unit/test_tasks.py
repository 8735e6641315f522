"""Tasks turn user mistakes into one clear line and a non-zero exit, never a traceback."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args):
    return subprocess.run([sys.executable, "-m", "invoke", *args], capture_output=True, text=True, cwd=ROOT)


def test_every_task_has_a_help_line():
    out = invoke("--list")
    assert out.returncode == 0
    for name in ("bootstrap", "build", "rebuild", "status", "down", "config", "pipeline", "where",
                 "repo-init", "snapshot", "snapshots", "forget", "certs"):
        line = next(l for l in out.stdout.splitlines() if l.strip().startswith(name + " "))
        assert len(line.split(None, 1)[1]) > 10, line


def test_invoke_reports_bad_configuration_without_traceback(tmp_path):
    bad = tmp_path / "config.toml"
    bad.write_text('[db]\nport = "x"\n')
    out = invoke("status", "--config", str(bad))
    assert out.returncode == 2
    assert "error: db.port: must be int" in out.stderr
    assert "Traceback" not in out.stderr


def test_certs_reports_a_leaf_outliving_its_ca_without_traceback(tmp_path):
    bad = tmp_path / "config.toml"
    bad.write_text(f'secrets_dir = "{tmp_path}/secrets"\n[certs]\nca_days = 30\nleaf_days = 30\n')
    out = invoke("certs", "--config", str(bad))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "error: certs.leaf_days: must be less than certs.ca_days (30), got 30" in out.stderr
    assert not (tmp_path / "secrets").exists()


def test_unknown_component_is_refused():
    out = invoke("build", "--only", "nosuch")
    assert out.returncode == 2 and "unknown component(s) nosuch" in out.stderr


def test_config_defaults_prints_toml():
    out = invoke("config", "--defaults")
    assert out.returncode == 0 and "[db]" in out.stdout


def every_task() -> dict:
    """tasks.py's tasks by their function's name."""
    import importlib.util

    from invoke import Task

    spec = importlib.util.spec_from_file_location("tasks", ROOT / "tasks.py")
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    return {name: obj for name, obj in vars(tasks).items() if isinstance(obj, Task)}


def test_every_task_takes_config_as_the_readme_says():
    import inspect

    found = every_task()
    assert len(found) > 20
    assert [name for name, t in found.items() if "config" not in inspect.signature(t.body).parameters] == []
    # Every task's body goes through @job (a DrError is one message and an exit code, never a traceback).
    assert [name for name, t in found.items() if getattr(t.body, "__wrapped__", None) is None] == []
    assert "Every task takes\n`--config FILE`" in (ROOT / "README.md").read_text()


def test_every_task_returns_one_typed_result_that_renders_itself():
    """@job(ResultType) names what each task's body returns: a record (common/records.py) that crosses as JSON,
    with its own render(); the decorator prints it (tasks.py holds no formatting) and --json prints to_json()."""
    import dataclasses
    import inspect

    from common.records import Record

    found = every_task()
    untyped = [name for name, t in found.items() if not getattr(t.body, "result_types", ())]
    assert untyped == []
    for name, t in found.items():
        for kind in t.body.result_types:
            assert issubclass(kind, Record) and dataclasses.is_dataclass(kind), (name, kind)
            assert kind.render is not Record.render, f"{kind.__name__} ({name}) has no render() of its own"
    # --json wherever a result is printed; `config` prints its JSON already (or the defaults' TOML).
    assert [name for name, t in found.items() if name != "show_config"
            and "json_" not in inspect.signature(t.body).parameters] == []


def test_tasks_py_prints_only_through_the_job_decorator():
    import ast

    tree = ast.parse((ROOT / "tasks.py").read_text())
    decorator = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "job")
    inside = {id(n) for n in ast.walk(decorator)}
    stray = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "print"
             and id(n) not in inside]
    assert stray == []
    assert "import json" not in (ROOT / "tasks.py").read_text()


def test_a_usage_mistake_is_one_line_and_exit_2():
    out = invoke("fuzz", "--seed", "x")
    assert out.returncode == 2 and out.stderr.strip() == "error: --seed: must be a whole number, got 'x'"
    out = invoke("pipeline", "--catch-up", "--stage", "importer")
    assert out.returncode == 2 and "Traceback" not in out.stderr and "give no --stage" in out.stderr


def test_rebuild_from_the_offsite_copy_names_what_it_lacks_before_anything_starts(tmp_path):
    """`rebuild --offsite` (the local repository is lost): without offsite.repository, or without the off-site
    repository's password files, one line naming what to put back, exit 2, before any phase runs."""
    conf = tmp_path / "config.toml"
    conf.write_text(f'secrets_dir = "{tmp_path}/secrets"\nhistory.dir = "{tmp_path}/history"\n')
    out = invoke("rebuild", "--offsite", "--config", str(conf))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: --offsite: no off-site repository is configured: set offsite.repository")
    conf.write_text(f'secrets_dir = "{tmp_path}/secrets"\nhistory.dir = "{tmp_path}/history"\n'
                    '[offsite]\nrepository = "rest:http://backup-host.example.org:8000/aggregator"\n')
    out = invoke("rebuild", "--offsite", "--config", str(conf))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert (f"password file(s) are missing: {tmp_path}/secrets/offsite-restic-password, "
            f"{tmp_path}/secrets/offsite-http-password; copy them") in out.stderr
    assert not (tmp_path / "history").exists()  # no job ran


def test_config_prints_the_configuration_as_json(tmp_path):
    import json

    conf = tmp_path / "config.toml"
    conf.write_text(f'data_root = "{tmp_path}/data"\n')
    out = invoke("config", "--config", str(conf))
    assert out.returncode == 0 and out.stdout.startswith(f"# from {conf}\n")
    assert json.loads(out.stdout.split("\n", 1)[1])["data_root"] == f"{tmp_path}/data"


def test_every_job_runs_inside_publish_job():
    """Each task that runs a job does it in `publish.as_job` (dr/watch/publish.py: monitoring.job, its result
    recorded, then the status published), so that its run is in the job history; the names the history knows
    them by are in its body."""
    import inspect

    found = every_task()
    names = {"rebuild": ['"rebuild"'], "rotate_secrets": ['"rotate-secrets"'],
             "pipeline": ["dr_pipeline.job_name(stage, catch_up)"], "snapshot": ['"snapshot"'],
             "forget": ['"forget"'], "check": ['"check-offsite"', '"check"'], "offsite": ['"offsite"'],
             "drill": ['"drill-two-hosts"', '"drill-bare-host"', '"drill"']}
    for name, shown in names.items():
        source = inspect.getsource(found[name].body)
        assert "publish.as_job(cfg, " in source and "publish.job(" not in source, name
        assert all(s in source for s in shown), name
