"""The package version: its own module, so retrainer's modules can read it without importing the package facade."""

__version__ = "0.1.0"
