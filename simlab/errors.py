class UserError(Exception):
    """Bad input from a user: the CLI prints its one-line message and exits with status 2."""
