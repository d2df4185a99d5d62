"""The one exception a user is meant to read: what is wrong, where, and what to do. The CLI prints it as one
`error:` line and exits 2; anything else is a bug."""


class PipelineError(RuntimeError):
    """An error a user can fix: the message says what is wrong, where, and what to do."""
