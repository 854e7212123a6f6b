"""Errors a user can fix, and how ``reid-train`` reports a failure.

An error the user fixes in the command line, the config or the files on disk (an unknown
config key, a missing dataset, a weights file that does not fit the model, a process
group that cannot form) derives from :class:`UserError`. ``reid-train`` prints its
message alone, once for the whole job, without a Python traceback; ``--debug`` (or the
environment variable ``REID_EXT_DEBUG=1``) prints the traceback as well. Any other
exception is a bug and keeps its traceback.

Each subclass also derives from the built-in type callers already catch
(``KeyError``, ``ValueError``, ``FileNotFoundError``, ``RuntimeError``).
"""
import os
import traceback


class UserError(Exception):
    """An error with a message that says what to change; printed without traceback."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigKeyError(UserError, KeyError):
    """An unknown config key or registry name (loss, dataset, trainer...)."""


class ConfigValueError(UserError, ValueError):
    """A config value that cannot work (e.g. a batch that does not divide)."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the config names is not there (config file, dataset...)."""


class DeviceUnavailableError(UserError, RuntimeError):
    """MODEL.DEVICE names a device this machine does not have."""


class WeightsError(UserError, ValueError):
    """A weights file that is missing, unreadable or does not fit the model."""


class ProcessGroupError(UserError, RuntimeError):
    """The processes of a multi-process run could not form (or lost) their group."""


DEBUG_ENV = "REID_EXT_DEBUG"


def debug_enabled(flag=False):
    """``--debug`` given, or ``REID_EXT_DEBUG`` set to anything but 0/false/no/empty."""
    return bool(flag) or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false",
                                                                                "no")


def is_user_error(exc):
    return isinstance(exc, UserError)


def describe(exc, debug=False, rank=None, world_size=1, prog="reid-train"):
    """The text printed for a failure: ``prog: [rank r of w: ]message`` for a
    :class:`UserError` (plus the traceback when ``debug``), else the full traceback."""
    where = f"rank {rank} of {world_size}: " if rank is not None and world_size > 1 else ""
    if is_user_error(exc):
        text = f"{prog}: {where}{exc}"
        if debug:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            text = tb.rstrip() + "\n" + text
        else:
            text += f" (--debug or {DEBUG_ENV}=1 shows the traceback)"
        return text
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    return f"{prog}: {where}unexpected error:\n{tb}" if where else tb
