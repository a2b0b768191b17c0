"""verify: every answer of a deep-learning course derived with sympy and checked against real torch."""

__version__ = "0.1.0"


class VerifyError(Exception):
    """The one error type of the project: a message a person can act on, shown as one line by the CLI."""


__all__ = ["VerifyError", "__version__"]
