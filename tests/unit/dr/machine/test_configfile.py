"""The configuration written as TOML (tomli-w) reads back to the same values."""

import json
import tomllib

from common import config
from dr.machine import configfile

COLLECTOR = {"name": "c1", "host": "collector.example.org", "port": 22, "user": "aggregator",
             "key_file": "/etc/aggregator-dr/secrets/c1.key", "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOm2",
             "archive_path": "/var/lib/collector/archive"}


def load_text(tmp_path, text):
    p = tmp_path / "config.toml"
    p.write_text(text)
    return config.load(p)


def test_effective_config_round_trips_through_toml(tmp_path):
    cfg = config.load(overrides={"collectors": [COLLECTOR], "db.port": 27018, "instance": "x-1",
                                 "monitoring.healthcheck_url": 'https://hc.example.org/"q"\\{job}'})
    assert load_text(tmp_path, configfile.to_toml(cfg.as_dict())).as_dict() == cfg.as_dict()


def test_keys_the_schema_does_not_know_are_left_out():
    text = configfile.to_toml({**config.defaults(), "stray": 1, "db": {**config.defaults()["db"], "stray": 2}})
    assert "stray" not in text and tomllib.loads(text)["db"]["port"] == 27017


def test_defaults_file_round_trips_and_explains_its_keys(tmp_path):
    text = configfile.defaults_as_toml()
    assert "[db]" in text and "port = 27017" in text
    assert "# host address the database port is published on\nbind = \"127.0.0.1\"" in text
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert load_text(tmp_path, text).as_dict() == config.load(empty).as_dict()


def test_config_shown_round_trips_and_renders_what_invoke_config_prints(tmp_path):
    cfg = load_text(tmp_path, "[db]\nport = 27018\n")
    shown = configfile.show(cfg)
    assert configfile.ConfigShown.from_json(shown.to_json()) == shown
    text = shown.render()
    assert text.startswith(f"# from {tmp_path / 'config.toml'}\n{{\n")
    assert '"port": 27018' in text and json.loads(text.split("\n", 1)[1]) == cfg.as_dict()


def test_the_defaults_shown_are_the_commented_toml_file():
    shown = configfile.show_defaults()
    assert configfile.ConfigShown.from_json(shown.to_json()) == shown
    assert shown.render() + "\n" == configfile.defaults_as_toml()
