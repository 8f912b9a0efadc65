"""The error every part of photocat raises when the catalog cannot do what was asked."""


class CatalogError(Exception):
    """The catalog cannot be used as asked (missing, newer than this photocat, unwritable...)."""
