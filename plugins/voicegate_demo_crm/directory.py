"""The customer directory of the demo CRM: ``customers.yaml`` parsed and matched.

The file maps channel identities (``<channel>:<sender>``, shell-style wildcards allowed, e.g.
``webchat:*``) to profiles. The first entry matching any of a customer's identities wins,
in file order; ``default`` (optional) applies to everyone else::

    customers:
      "rest:alice": {display_name: Alice Rossi, language: it, attributes: {balance_eur: 1234.56, tier: gold}}
      "webchat:*":  {attributes: {balance_eur: 250.0, tier: standard}}
    default: {attributes: {tier: standard}}
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.conversation import CustomerProfile
from gateway.errors import ConfigError, ConfigProblem


class ProfileEntry(BaseModel):
    """One profile in ``customers.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    display_name: str | None = None
    language: Literal["it", "en"] | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class DirectoryFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    customers: dict[str, ProfileEntry] = Field(default_factory=dict)
    default: ProfileEntry | None = None


@dataclass(frozen=True)
class Directory:
    """Identity patterns in file order, and the default profile."""

    entries: tuple[tuple[str, ProfileEntry], ...]
    default: ProfileEntry | None

    def match(self, identities: Iterable[tuple[str, str]]) -> ProfileEntry | None:
        """The first entry (in file order) whose pattern matches one of ``identities``."""
        keys = [f"{channel}:{sender}" for channel, sender in identities]
        for pattern, entry in self.entries:
            # fnmatchcase: identities are case-sensitive ids, whatever the OS.
            if any(fnmatch.fnmatchcase(key, pattern) for key in keys):
                return entry
        return self.default


def load_directory(path: str | Path) -> Directory:
    """Parse ``customers.yaml``; problems raise :class:`ConfigError` naming the file and key."""
    file = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(file, None, "", "the customers file does not exist",
                                         "Create it (see config/customers.yaml) or fix crm[].settings.customers")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError([ConfigProblem(file, mark.line + 1 if mark else None, "", f"invalid YAML: {exc}",
                                         "Fix the syntax")]) from None
    try:
        parsed = DirectoryFile.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError([
            ConfigProblem(file, None, ".".join(str(p) for p in e["loc"]), e["msg"], "Fix the value")
            for e in exc.errors()
        ]) from None
    for pattern in parsed.customers:
        if ":" not in pattern:
            raise ConfigError([ConfigProblem(file, None, f"customers.{pattern}", "the key is not '<channel>:<sender>'",
                                             "Write it like \"rest:alice\" or \"webchat:*\"")])
    return Directory(tuple(parsed.customers.items()), parsed.default)


def to_profile(entry: ProfileEntry, source: str) -> CustomerProfile:
    return CustomerProfile(display_name=entry.display_name, language=entry.language,
                           attributes=dict(entry.attributes), source=source)
