import logging

import pytest

from common import runner
from common.errors import CommandError, CommandNotFound


def test_capture_returns_stdout_and_logs_the_command(caplog):
    caplog.set_level(logging.INFO, logger="aggregator-dr")
    out = runner.run(["sh", "-c", "echo out; echo progress >&2"], capture=True)
    assert out == "out\n"
    text = caplog.text
    assert "$ sh -c" in text
    assert "progress" in text  # stderr is streamed as progress


def test_failure_raises_typed_error_with_stderr_tail():
    with pytest.raises(CommandError) as err:
        runner.run(["sh", "-c", "echo first >&2; echo boom >&2; exit 3"])
    assert err.value.returncode == 3
    assert "boom" in err.value.stderr_tail
    assert "exit 3" in str(err.value)


def test_missing_program_is_command_not_found():
    with pytest.raises(CommandNotFound) as err:
        runner.run(["no-such-program-here", "--flag"])
    assert err.value.returncode == 127


def test_env_values_are_never_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="aggregator-dr")
    out = runner.run(["sh", "-c", 'test -n "$SECRET_VALUE" && echo set'], capture=True,
                     env={"SECRET_VALUE": "hunter2-do-not-log"})
    assert out == "set\n"
    assert "hunter2-do-not-log" not in caplog.text


def test_stdout_to_file(tmp_path):
    target = tmp_path / "out.bin"
    with open(target, "wb") as fh:
        runner.run(["printf", "a\\000b"], stdout=fh)
    assert target.read_bytes() == b"a\x00b"


def test_timeout_kills_and_raises():
    with pytest.raises(CommandError, match="timeout"):
        runner.run(["sleep", "5"], timeout=0.5)


def test_read_hands_the_binary_stream_to_the_consumer():
    out = runner.read(["sh", "-c", "printf 'a\\0b'; echo progress >&2"], lambda stream: stream.read())
    assert out == b"a\0b"


def test_read_raises_the_commands_error_when_it_fails_midway():
    def consume(stream):
        data = stream.read()
        if data != b"complete":
            raise ValueError("truncated")
        return data

    with pytest.raises(CommandError) as err:
        runner.read(["sh", "-c", "printf part; echo 'disk on fire' >&2; exit 4"], consume)
    assert err.value.returncode == 4 and "disk on fire" in err.value.stderr_tail


def test_read_kills_the_command_when_the_consumer_gives_up():
    def consume(stream):
        stream.read(10)
        raise ValueError("not what I expected")

    with pytest.raises(ValueError):
        runner.read(["sh", "-c", "exec yes"], consume)


def test_a_spawned_command_reads_our_lines_hands_us_its_own_and_dies_with_its_children():
    import queue
    import time

    lines: queue.Queue = queue.Queue()
    proc = runner.spawn(["sh", "-c", "sleep 300 & while read -r x; do echo \"got $x\"; done"], lines.put)
    assert proc.send("one") and lines.get(timeout=10) == "got one"
    child = runner.run(["pgrep", "-s", str(proc.proc.pid), "sleep"], capture=True).split()
    assert len(child) == 1
    proc.kill()
    assert proc.proc.returncode == -9 and not proc.send("two")
    for _ in range(50):  # the whole group is killed: the child too
        if runner.run(["sh", "-c", f"kill -0 {child[0]} 2>/dev/null && echo alive || true"], capture=True) == "":
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the spawned command's child outlived it")


def test_a_spawned_command_that_ends_gives_its_exit_code():
    proc = runner.spawn(["sh", "-c", "read -r x; echo \"$x\" >&2; exit 4"], lambda line: None)
    proc.send("bye")
    assert proc.wait(timeout=10) == 4 and list(proc.tail) == ["bye"]
