"""One exception tree for the gateway core.

Messages say where, what was expected, what was found and what to do. Only the CLI
turns them into an exit code.
"""

from __future__ import annotations

from dataclasses import dataclass


class GatewayError(Exception):
    """Base class of every error the gateway core raises."""


@dataclass
class ConfigProblem:
    """One thing wrong with a configuration file, located precisely enough to fix it."""

    file: str
    line: int | None
    key_path: str
    problem: str
    hint: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        key = f" at '{self.key_path}'" if self.key_path else ""
        return f"{where}{key}: {self.problem}. {self.hint}".rstrip()


class ConfigError(GatewayError):
    """The configuration cannot be used; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class PluginError(GatewayError):
    """A plugin is unknown, misbehaves at start-up, misspells a hook or registers a duplicate name."""


class InboundRejected(GatewayError):
    """An inbound delivery is refused (bad signature, malformed body, too large).

    ``status`` is the HTTP status a channel should answer with; the message is safe to return
    to the caller and says what to do.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class UnknownConversation(GatewayError):
    """A conversation id does not exist (or is not visible to the caller)."""
