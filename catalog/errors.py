"""The error every part of photocat raises when the catalog cannot do what was asked, and how
an exception from a library becomes one line of a record's `error` or `warnings`."""


class CatalogError(Exception):
    """The catalog cannot be used as asked (missing, newer than this photocat, unwritable...)."""


def one_line(exc: BaseException) -> str:
    """An exception's message as one line of at most 200 characters: messages from libraries
    (libheif ends its own with a newline) are copied into records, whose warnings are stored
    newline-separated and whose error is shown on one line."""
    return " ".join(str(exc).split())[:200]


def describe(exc: BaseException) -> str:
    """ "TypeName: message" on one line (the type alone when there is no message)."""
    text = one_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
