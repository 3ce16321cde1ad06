"""The one exception type a user sees as a message instead of a traceback."""

from __future__ import annotations


class FaceganError(Exception):
    """A failure caused by the user's input or environment.

    The CLI prints `message` (which names the input) followed by `fix` (what to do about it) as one
    paragraph on stderr and exits with status 1. Anything else that escapes is a bug.
    """

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message.rstrip()
        self.fix = fix.rstrip()

    def paragraph(self) -> str:
        text = self.message
        if self.fix:
            text = f"{text} {self.fix}"
        return text


class UsageProblem(FaceganError):
    """A command line that cannot be carried out as written (options that contradict each other, an
    option a resume cannot honour): the CLI reports it as a usage error, exit status 2."""
