"""The one base class of errors a command reports and stops on (no traceback, exit code 1).

Library code raises its own subclass with a message that says what happened and what to do; the CLI prints
the message. Kept in a module of its own so the CLI can catch it without importing the libraries.
"""

from __future__ import annotations


class OperationFailed(RuntimeError):
    """A command could not do what was asked; the message tells the person why and what to do."""
