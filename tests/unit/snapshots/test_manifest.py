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


def test_known_digests_skip_unchanged_files_and_read_every_changed_one(tmp_path):
    """A set reads only the files whose size, mtime, ctime or inode changed since the last set; the
    summary is the same as reading every file. A replaced file of the same size (the pipeline writes a new
    file and renames it: a new inode), a renamed one and a new one are read; a file gone is dropped from
    what is kept."""
    root, cache = tmp_path / "data", tmp_path / "digests.json"
    root.mkdir()
    make_root(root)
    first = manifest.Digests(cache)
    assert manifest.directories(root, first) == manifest.directories(root)
    assert first.read == 3  # archive's two files and raw/r2.yaml
    first.save()

    again = manifest.Digests(cache)
    assert manifest.directories(root, again) == manifest.directories(root) and again.read == 0

    # same size, other content, written as the pipeline writes: a new file renamed over the old one
    (root / "raw" / "r2.yaml.new").write_bytes(b"---\nreport: 3\n")
    (root / "raw" / "r2.yaml.new").rename(root / "raw" / "r2.yaml")
    (root / "archive" / "2026-11-01" / "r1.yaml.jsonl").rename(root / "archive" / "2026-11-01" / "r9.yaml.jsonl")
    (root / "reports" / "r4.yaml").write_bytes(b"---\nreport: 4\n")
    changed = manifest.Digests(cache)
    assert manifest.directories(root, changed) == manifest.directories(root)
    assert changed.read == 3
    changed.save()
    import json

    assert sorted(json.loads(cache.read_text())) == ["archive/2026-11-01/r1.yaml", "archive/2026-11-01/r9.yaml.jsonl",
                                                      "raw/r2.yaml", "reports/r4.yaml"]


def test_an_unreadable_digest_cache_means_every_file_is_read(tmp_path):
    root, cache = tmp_path / "data", tmp_path / "digests.json"
    root.mkdir()
    make_root(root)
    for text in ("{not json", "[1, 2]", '{"raw/r2.yaml": [1, 2]}', '{"raw/r2.yaml": "x"}'):
        cache.write_text(text)
        d = manifest.Digests(cache)
        assert manifest.directories(root, d) == manifest.directories(root) and d.read == 3, text
