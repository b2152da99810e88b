"""Typed errors. Every adapter turns these into a message a person can act on."""

from __future__ import annotations


class DoraError(Exception):
    """Base class for errors whose message is meant for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(DoraError):
    """Input that cannot be accepted; nothing was stored.

    ``errors`` lists ``(field, message)`` pairs when several fields are wrong at once; the
    message joins them.
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        errors: list[tuple[str | None, str]] | None = None,
    ) -> None:
        self.errors = list(errors) if errors else [(field, message or "invalid input")]
        if message is None:
            message = "; ".join(f"{f}: {m}" if f else m for f, m in self.errors)
        super().__init__(message)
        self.field = field if field is not None else self.errors[0][0]


class NotFound(DoraError):
    """A referenced deploy, incident or service does not exist."""


class StateError(DoraError):
    """The request is valid but the record is in a state that does not allow it."""


class ConfigError(DoraError):
    """A setting has a wrong value; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
