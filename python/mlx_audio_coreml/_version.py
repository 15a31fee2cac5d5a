"""The package version, alone, so anything can import it without import cycles."""

__version__ = "0.1.0"
