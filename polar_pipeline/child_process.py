"""One call in a fresh interpreter: ``run_in_child(function, *args)`` returns its result or raises its error.

A long import runs each heavy phase (reading years of JSON, a rebuild over 1,825 days, a publish) this way,
so that what a phase's allocators keep after it goes back to the system when its process ends, and the
calling process never loads Dagster, DuckDB or polars. The function and its arguments are pickled into the
child's stdin; the answer comes back on a pipe of its own, so the child's stdout and stderr stay the
caller's (a terminal, or the compute logs of the Dagster run that called). multiprocessing's spawn would do
the same, but it also starts a resource-tracker process that lives as long as the caller (about 12 MB of a
500 MB budget).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import ParamSpec, TypeVar

_Args = ParamSpec("_Args")
_Result = TypeVar("_Result")


def run_in_child(function: Callable[_Args, _Result], *args: _Args.args, **kwargs: _Args.kwargs) -> _Result:
    """``function(*args, **kwargs)`` in a child interpreter; ``function`` must be importable by name (a
    module-level function) and the arguments and result picklable. The child's exception is raised here,
    with the child's traceback as a note; a child that dies without answering is a ``ChildProcessError``.
    The child keeps this process's warning filters (the CLI silences Dagster's beta warnings)."""
    request = pickle.dumps((function, args, kwargs, list(warnings.filters)))
    read_end, write_end = os.pipe()
    command = [sys.executable, "-m", __name__, str(write_end)]
    try:
        with subprocess.Popen(command, stdin=subprocess.PIPE, pass_fds=(write_end,)) as child:
            os.close(write_end)
            write_end = -1
            assert child.stdin is not None
            with child.stdin:
                child.stdin.write(request)
            with os.fdopen(read_end, "rb") as answers:
                read_end = -1
                answer = answers.read()
    finally:
        for end in (read_end, write_end):
            if end >= 0:
                os.close(end)
    if not answer:
        raise ChildProcessError(
            f"{function.__module__}.{function.__qualname__} in a child process: it exited with code "
            f"{child.returncode} without an answer"
        )
    succeeded, value = pickle.loads(answer)
    if succeeded:
        return value  # type: ignore[no-any-return]
    raise value


def _portable(error: BaseException) -> BaseException:
    """The error itself when it pickles (with the child's traceback as a note), else a ``ChildProcessError``
    carrying that traceback."""
    where = "in the child process:\n" + "".join(traceback.format_exception(error)).rstrip()
    try:
        error.add_note(where)
        pickle.loads(pickle.dumps(error))
    except Exception:  # any error that cannot travel is described instead
        return ChildProcessError(f"{type(error).__name__}: {error}\n{where}")
    return error


def _pattern(text: object) -> str:
    return str(getattr(text, "pattern", text) or "")


def _serve(answer_fd: int) -> None:
    """The child: read the call from stdin, make it, write the answer to ``answer_fd``."""
    with os.fdopen(answer_fd, "wb") as answers:
        function, args, kwargs, filters = pickle.load(sys.stdin.buffer)
        for action, message, category, module, line in reversed(filters):  # a pattern, a string or None
            warnings.filterwarnings(action, _pattern(message), category, _pattern(module), line)
        try:
            answer = (True, function(*args, **kwargs))
        except BaseException as error:  # every failure goes back to the caller
            answer = (False, _portable(error))
        answers.write(pickle.dumps(answer))


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
