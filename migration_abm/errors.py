"""Error types shared by the package: bad user input is reported in one line and exits with code 2."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input (config, CSV, CLI flag). The message is one line naming file, field and value."""

    def __init__(self, source: str, field: str, value: object, reason: str) -> None:
        self.source, self.field, self.value, self.reason = str(source), field, value, reason
        super().__init__(f"{self.source}: {field} = {value!r}: {reason}")


class ConfigError(InputError):
    """A scenario/experiment config key is unknown, mistyped or out of range."""
