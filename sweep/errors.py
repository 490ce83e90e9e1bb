"""The exception for mistakes a user can make; the CLI turns it into one line and exit 2."""

from trainables.config import ConfigError


class UserError(ConfigError):
    """Bad input (a value, a file, a path, a cluster address): the message is one clear line."""
