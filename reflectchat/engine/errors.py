"""Errors a user can act on: one sentence, no traceback."""


class EngineError(Exception):
    """A model could not be loaded or run; the message says why and what to do."""
