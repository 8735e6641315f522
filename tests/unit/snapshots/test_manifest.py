"""A manifest computed from a folder equals the one computed from a tar stream of the same folder (the
form `restic dump -a tar` gives back), and any change of content, name or presence shows in the digest."""

import io
import tarfile

from snapshots import manifest


def make_root(root):
    (root / "archive" / "2026-11-01").mkdir(parents=True)
    (root / "archive" / "2026-11-01" / "r1.yaml").write_bytes(b"---\nreport: 1\n")
    (root / "archive" / "2026-11-01" / "r1.yaml.jsonl").write_bytes(b"{}\n")
    (root / "raw" / ".incoming").mkdir(parents=True)
    (root / "raw" / ".incoming" / "partial.yaml").write_bytes(b"half")
    (root / "raw" / "r2.yaml").write_bytes(b"---\nreport: 2\n")
    (root / "raw" / ".r3.yaml.tmp-123").write_bytes(b"temporary")
    for state in ("staging", "reports", "quarantine", "originals"):
        (root / state).mkdir()
    (root / "journal").mkdir()
    (root / "journal" / "log").write_bytes(b"not a state directory")


def tar_of(root, prefix="data") -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(root, arcname=prefix)
    buf.seek(0)
    return buf


def test_folder_and_tar_stream_give_the_same_manifest(tmp_path):
    make_root(tmp_path)
    from_folder = manifest.directories(tmp_path)
    assert from_folder == manifest.directories_from_tar(tar_of(tmp_path), "/data")
    assert from_folder["archive"]["reports"] == 1 and from_folder["archive"]["files"] == 2
    assert from_folder["raw"]["files"] == 1  # neither .incoming nor temporaries count


def test_a_changed_byte_or_a_missing_file_changes_the_digest(tmp_path):
    make_root(tmp_path)
    before = manifest.directories(tmp_path)
    (tmp_path / "raw" / "r2.yaml").write_bytes(b"---\nreport: 3\n")  # same size, other content
    after = manifest.directories(tmp_path)
    assert after["raw"]["bytes"] == before["raw"]["bytes"]
    problems = manifest.compare({"directories": before}, {"directories": after})
    assert problems == [f"raw/: digest is {after['raw']['digest']}, the manifest says {before['raw']['digest']}"]
    (tmp_path / "archive" / "2026-11-01" / "r1.yaml.jsonl").unlink()
    problems = manifest.compare({"directories": before}, {"directories": manifest.directories(tmp_path)})
    assert any(p.startswith("archive/: files is 1") for p in problems)
