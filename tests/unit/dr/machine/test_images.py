"""What `invoke build` and `invoke status` say of the images (dr/machine/images.py): records that round-trip
through JSON, and their text."""

from dr.machine import images


def test_a_build_result_round_trips_and_renders_its_table():
    built = images.BuildResult([
        images.Built("sync", "aggregator-dr/sync:latest", "sha256:ab", 212.4, 3.6, 9, 12, False),
        images.Built("db", "aggregator-dr/db:latest", "sha256:cd", 95.0, 0.4, 7, 7, True)])
    assert images.BuildResult.from_json(built.to_json()) == built
    assert built.to_dict()["images"][1] == {"component": "db", "image": "aggregator-dr/db:latest",
                                            "image_id": "sha256:cd", "size_mb": 95.0, "seconds": 0.4,
                                            "cached_steps": 7, "total_steps": 7, "unchanged": True}
    assert built.render().splitlines() == [
        "image                      seconds  cached  size_mb",
        "aggregator-dr/sync:latest  4        9/12    212",
        "aggregator-dr/db:latest    0        7/7     95"]


def test_an_image_row_has_only_image_and_present_when_the_image_is_missing():
    missing = images.ImageRow("aggregator-dr/db:latest", False)
    assert missing.to_dict() == {"image": "aggregator-dr/db:latest", "present": False}
    assert images.ImageRow.from_dict(missing.to_dict()) == missing
    there = images.ImageRow("aggregator-dr/base:bookworm", True, created="2026-01-01T10:00:00", version="0.1.0",
                            revision="0123456789ab", size_mb=120)
    assert images.ImageRow.from_json(there.to_json()) == there
    assert there.to_dict()["size_mb"] == 120
