"""photocat: a photo catalog that keeps EXIF metadata of photo folders in a SQL database."""

__version__ = "0.4.0"
