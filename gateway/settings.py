"""The gateway's configuration as frozen, typed settings (the shape of ``config/gateway.yaml``).

Every model forbids unknown keys, so a typo is an error instead of a silently ignored
setting. Plugin settings stay plain dicts here: each component validates its own section
against the ``settings_model`` it registered (see :mod:`gateway.plugin_manager`).
:func:`gateway.config_loader.load_config` builds these from YAML and reports problems with
file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from gateway.agent_settings import AgentsSettings

# Schemes redis-py's ``from_url`` accepts; anything else fails only when ``voicegate run`` connects.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    """Where the HTTP server listens, and the largest request body it accepts."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)


class DatabaseSettings(_Section):
    """The database URL: ``sqlite+aiosqlite:///<file>`` (relative to the config file) or PostgreSQL."""

    url: str = "sqlite+aiosqlite:///var/voicegate.db"
    # PostgreSQL only: keep every table in this schema (tests use a private one per run).
    db_schema: str | None = Field(default=None, alias="schema")
    # Create/upgrade the schema at start-up (``voicegate db upgrade`` does the same on demand).
    migrate_on_start: bool = True

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("url")
    @classmethod
    def _supported_url(cls, url: str, info: ValidationInfo) -> str:
        """Reject what :func:`gateway.db.database.normalise_url` would reject at start-up, so check-config sees it."""
        if not _check_urls(info):
            return url
        # Imported here: the settings stay importable without loading SQLAlchemy.
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        from gateway.db.database import DatabaseError, normalise_url

        hint = ("Use sqlite+aiosqlite:///<file> (relative to the YAML's folder) or "
                "postgresql+asyncpg://<user>:<password>@<host>/<db>; sqlite:/// and postgresql:// are accepted too")
        try:
            shown = make_url(url).render_as_string(hide_password=True)
        except (ArgumentError, ValueError):
            raise PydanticCustomError("database_url", "not a database URL", {"hint": hint, "found": url}) from None
        try:
            normalise_url(url)
        except DatabaseError:
            driver = make_url(url).drivername
            if driver.startswith("sqlite"):  # the only other refusal: an in-memory database
                raise PydanticCustomError(
                    "database_url", "an in-memory SQLite database cannot be shared between the gateway's connections",
                    {"hint": "Use a file, e.g. sqlite+aiosqlite:///var/voicegate.db", "found": shown}) from None
            raise PydanticCustomError("database_url", "the database driver '{driver}' is not supported",
                                      {"driver": driver, "hint": hint, "found": shown}) from None
        return url


class CoordinationSettings(_Section):
    """Set ``redis_url`` to run several gateway instances: per-conversation ordering then spans them."""

    redis_url: str | None = None

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str | None, info: ValidationInfo) -> str | None:
        """Empty means unset (``${REDIS_URL:-}``); otherwise the scheme redis-py needs, checked before start-up."""
        if not url:
            return None
        if _check_urls(info) and not url.lower().startswith(REDIS_SCHEMES):
            raise PydanticCustomError(
                "redis_url", "a Redis URL must start with redis://, rediss:// (TLS) or unix://",
                {"hint": "Write it as redis://<host>:6379/0 (rediss:// for TLS, unix:///path/to/redis.sock), "
                         "or remove coordination.redis_url for a single instance",
                 "found": _without_password(url)})
        return url


def _check_urls(info: ValidationInfo) -> bool:
    """URLs are checked unless validated with ``context={"check_urls": False}``, as
    :func:`gateway.config_loader.parse_config` does for operator tools that fill unset variables with placeholders."""
    return not (isinstance(info.context, dict) and info.context.get("check_urls") is False)


def _without_password(url: str) -> str:
    """``url`` with everything between ``://`` and the last ``@`` masked, for error messages: a password may hold
    ``/``, ``:`` or ``@`` itself, so anything before the host could be part of it."""
    head, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    return f"{head}://***@{rest.rpartition('@')[2]}"


class ComponentUse(_Section):
    """One configured component: the registered name and its settings."""

    use: str = Field(min_length=1)
    settings: dict[str, Any] = Field(default_factory=dict)


class CrmUse(ComponentUse):
    """A CRM backend; profiles are cached on the customer for ``cache_ttl_s`` seconds."""

    cache_ttl_s: float = Field(default=300.0, ge=0)


class AuthenticationSettings(_Section):
    """Which authenticator guards sensitive intents, and how long a verification lasts."""

    use: str = Field(min_length=1)
    verified_ttl_s: int = Field(default=900, ge=1)
    authenticators: dict[str, dict[str, Any]] = Field(default_factory=dict)


class HookSettings(_Section):
    """How notification hooks (``on_*``) are run."""

    timeout_s: float = Field(default=5.0, gt=0)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"


class GatewaySettings(_Section):
    """The whole gateway configuration. Build it with :func:`gateway.config_loader.load_config`.

    ``config_dir`` (not a YAML key) is the folder relative paths resolve against: the config
    file's folder when loaded from a file, else the current directory.
    """

    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    coordination: CoordinationSettings = CoordinationSettings()
    plugins: tuple[str, ...] = ()
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    bots: tuple[ComponentUse, ...] = ()
    crm: tuple[CrmUse, ...] = ()
    authentication: AuthenticationSettings | None = None
    agents: AgentsSettings = AgentsSettings()
    hooks: HookSettings = HookSettings()
    data_dir: str = "var"  # writable folder for plugin state, relative to the config file
    logging: LoggingSettings = LoggingSettings()

    _config_path: str | None = PrivateAttr(default=None)
    _config_dir: str | None = PrivateAttr(default=None)
    # key path (tuple of str/int) -> line number in the YAML, for errors found after loading
    _lines: dict[tuple[Any, ...], int] = PrivateAttr(default_factory=dict)
    # key path -> the environment-derived strings in its value: errors found later (plugin sections) must not show them
    _secrets: dict[tuple[Any, ...], tuple[str, ...]] = PrivateAttr(default_factory=dict)

    @property
    def config_path(self) -> str | None:
        """The YAML file these settings came from, if any."""
        return self._config_path

    @property
    def config_dir(self) -> str:
        """The folder relative paths resolve against."""
        return self._config_dir or str(Path.cwd())

    def line_of(self, path: tuple[Any, ...]) -> int | None:
        """The YAML line of ``path`` (or of its nearest parent), when loaded from a file."""
        for end in range(len(path), -1, -1):
            line = self._lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def with_source(
        self, *, config_path: str | None, config_dir: str, lines: dict[tuple[Any, ...], int] | None = None,
        secrets: dict[tuple[Any, ...], tuple[str, ...]] | None = None,
    ) -> "GatewaySettings":
        """Attach where the settings came from (used by the loader and :mod:`gateway.testing`): the file, the
        folder, each key path's line, and which key paths hold values taken from the environment."""
        self._config_path = config_path
        self._config_dir = config_dir
        self._lines = dict(lines or {})
        self._secrets = dict(secrets or {})
        return self

    @property
    def secret_paths(self) -> dict[tuple[Any, ...], tuple[str, ...]]:
        """Key paths whose values came (partly) from ``${VAR}``, with the strings error messages must not show."""
        return dict(self._secrets)

    def resolve_path(self, value: str) -> str:
        """``value`` made absolute against :attr:`config_dir`."""
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else Path(self.config_dir) / path)

    @property
    def data_path(self) -> str:
        """The absolute, writable data folder."""
        return self.resolve_path(self.data_dir)
