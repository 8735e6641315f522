"""A running service container is kept only when it is made of what the configuration says now: the
fingerprint of its image and settings (ports, mounts, network) decides. CI once reused a container left by a
killed run that published an old port."""

from common import config
from dr import services


def spec(tmp_path, **overrides):
    cfg = config.load(overrides={"secrets_dir": str(tmp_path / "secrets"), "data_root": str(tmp_path / "data"),
                                 **overrides})
    return services.webmirror_spec(cfg)


def test_the_same_configuration_gives_the_same_fingerprint(tmp_path):
    assert spec(tmp_path).fingerprint("sha256:1") == spec(tmp_path).fingerprint("sha256:1")


def test_another_port_image_or_mount_gives_another(tmp_path):
    base = spec(tmp_path).fingerprint("sha256:1")
    assert spec(tmp_path, **{"webmirror.port": 8081}).fingerprint("sha256:1") != base
    assert spec(tmp_path).fingerprint("sha256:2") != base
    assert spec(tmp_path, data_root=str(tmp_path / "elsewhere")).fingerprint("sha256:1") != base
