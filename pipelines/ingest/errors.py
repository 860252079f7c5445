"""Errors shared by the readers and the ingest."""


class ExtractError(Exception):
    """A file-level problem: the message names the file and the column and what was found."""
