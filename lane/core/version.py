"""The package version, in one place (lane.__version__ re-exports it)."""

VERSION = "0.1.0"
