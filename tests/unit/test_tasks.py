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


def test_every_task_takes_config_as_the_readme_says():
    import importlib.util
    import inspect

    from invoke import Task

    spec = importlib.util.spec_from_file_location("tasks", ROOT / "tasks.py")
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    found = {name: obj for name, obj in vars(tasks).items() if isinstance(obj, Task)}
    assert len(found) > 20
    assert [name for name, t in found.items() if "config" not in inspect.signature(t.body).parameters] == []
    # Every task's body goes through @job (a DrError is one message and an exit code, never a traceback).
    assert [name for name, t in found.items() if getattr(t.body, "__wrapped__", None) is None] == []
    assert "Every task takes\n`--config FILE`" in (ROOT / "README.md").read_text()
