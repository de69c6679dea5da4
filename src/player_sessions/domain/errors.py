"""The domain's error tree.

Every error the domain raises on purpose descends from ``DomainError``, so an outer layer can map
the whole family to a client error with one ``except`` and let anything else surface as a bug::

    Exception
     └── DomainError
          ├── InvalidRequest      a request parameter (limit, hours, cursor, ...) breaks a rule
          └── InvalidEvent        one submitted event breaks a rule (defined in domain.events)

Both leaves carry a ``field`` and a ``rule`` and render as ``"<field>: <rule>"``, the exact text
clients see.
"""

from __future__ import annotations

__all__ = ["DomainError", "InvalidRequest"]


class DomainError(Exception):
    """Base of every error the domain raises deliberately."""


class InvalidRequest(DomainError):
    """A request parameter outside what the service accepts, e.g. ``limit: must be 1 to 1000``."""

    def __init__(self, field: str, rule: str) -> None:
        # args mirrors the constructor so the exception survives pickling.
        super().__init__(field, rule)
        self.field = field
        self.rule = rule

    @property
    def message(self) -> str:
        return f"{self.field}: {self.rule}"

    def __str__(self) -> str:
        return self.message
