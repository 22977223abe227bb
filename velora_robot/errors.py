"""Errors a user can fix. Each message says what was wrong, where, and what to do."""


class ConfigError(ValueError):
    """A setting, file or environment variable is invalid; the message names it."""
