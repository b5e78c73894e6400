"""Errors caused by the user's input: reported as one clear line, never a traceback."""


class UserError(Exception):
  """Bad flags, data or files. The message says what was wrong and what to do."""
