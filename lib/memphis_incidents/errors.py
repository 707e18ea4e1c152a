"""The project's exception hierarchy and the exit codes the runner maps them to.

Errors a user can cause (bad parameters, an unreachable or retired source, schema drift, bad data)
raise one of these with a message that says what to do; the CLI prints the message, not a traceback.
"""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Distinct process exit codes of `run_pipeline.py` (documented in the README)."""

    OK = 0
    CELL_ERROR = 1
    BAD_PARAMETERS = 2
    KERNEL_DIED = 3
    TIMEOUT = 4
    DATA_QUALITY = 5
    SOURCE_UNREACHABLE = 6
    SOURCE_ERROR = 7
    LOCKED = 8
    IO_ERROR = 9  # the runner could not write its own files (a full disk, a folder gone)


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose."""

    exit_code: ExitCode = ExitCode.CELL_ERROR


class ConfigError(PipelineError):
    """A parameter, preset or config file is wrong; nothing has run yet."""

    exit_code = ExitCode.BAD_PARAMETERS


class SourceError(PipelineError):
    """The source answered, but not with what we can use (404, 401/403, drift, malformed page)."""

    exit_code = ExitCode.SOURCE_ERROR


class SourceUnreachable(SourceError):
    """The source could not be reached after all retries (DNS, refused, timeouts, 5xx)."""

    exit_code = ExitCode.SOURCE_UNREACHABLE


class DatasetNotFound(SourceError):
    """The URL names no dataset or layer (HTTP 404): retired, moved or a wrong id."""


class MalformedResponse(SourceError):
    """The source kept answering with bodies that are not the JSON its API promises."""


class SchemaDriftError(SourceError):
    """A field the preset maps is missing or renamed at the source."""


class ReconciliationError(SourceError):
    """The rows landed do not match the count the server reports."""


class DataQualityError(PipelineError):
    """The data breaks a rule that must stop the run (for example too many rejected rows)."""

    exit_code = ExitCode.DATA_QUALITY


class RunLockedError(PipelineError):
    """Another run holds the data directory's lock."""

    exit_code = ExitCode.LOCKED


def exit_code_for(error_name: str) -> ExitCode:
    """Exit code for an exception class name, as papermill reports it (`ename`)."""
    for cls in _all_subclasses(PipelineError):
        if cls.__name__ == error_name:
            return cls.exit_code
    return ExitCode.CELL_ERROR


def _all_subclasses(cls: type[PipelineError]) -> list[type[PipelineError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found
