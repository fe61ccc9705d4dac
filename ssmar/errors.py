"""One error type for every user-facing failure.

The CLI catches :class:`SsmarError`, prints its message as a single line and exits
with ``exit_code``; messages say what is wrong, where, and how to fix it.
"""


class SsmarError(Exception):
    """A user-facing error: bad input, bad config, unreadable file."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(" ".join(str(message).split()))
        if exit_code is not None:
            self.exit_code = exit_code
