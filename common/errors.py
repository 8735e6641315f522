"""Typed errors. Anything derived from DrError is a condition the operator can act on:
tasks print its message (no traceback) and exit non-zero."""


class DrError(Exception):
    """Base of every error we expect and explain."""

    exit_code = 1


class FailedWithResult(DrError):
    """A job that failed after making its result, such as a failing drill after saving its report: the raiser
    hands the result over (`result`), so that the job history records it along with the message."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result  # a common.records.Record, or None when the job failed before it had one


class ConfigError(DrError):
    exit_code = 2


class PreflightError(DrError):
    """The host is not fit for the job (not root, not Debian, no disk, no daemon)."""


class SecretError(DrError):
    exit_code = 2


class CommandError(DrError):
    """An external command failed; carries its argv (without secrets) and the tail of its stderr."""

    def __init__(self, argv, returncode, stderr_tail=""):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        msg = f"command failed (exit {returncode}): {' '.join(self.argv)}"
        if stderr_tail:
            msg += "\n--- last lines of its output ---\n" + stderr_tail.rstrip()
        super().__init__(msg)


class CommandNotFound(CommandError):
    def __init__(self, argv):
        super().__init__(argv, 127, f"{argv[0]}: not found on PATH")


class ImageBuildError(DrError):
    pass


class ServiceError(DrError):
    pass


class DatabaseRefused(DrError):
    """PostgreSQL (behind FerretDB) refused a role: a privilege it lacks, a wrong password, an address it
    may not connect from. sqlstate is PostgreSQL's code."""

    def __init__(self, message: str, role: str = "", sqlstate: str = ""):
        super().__init__(message)
        self.role = role
        self.sqlstate = sqlstate


class UsageError(DrError):
    """A command given options that do not go together, or a value it cannot take."""

    exit_code = 2
