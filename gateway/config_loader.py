"""YAML -> :class:`GatewaySettings`, with errors that say file:line, key path, what was expected and what to do.

The YAML is composed into nodes first (PyYAML's ``SafeLoader``), so every key path keeps the
line it came from; pydantic's error locations are then mapped back to those lines. ``${VAR}``
takes a value from the environment (unset = error), ``${VAR:-default}`` has a default.
Plugin sections are validated against each component's own ``settings_model`` and reported
the same way. Problems are collected in stages and each stage's problems are raised together as
one :class:`ConfigError`: YAML syntax and duplicate keys, then ``${VAR}`` references, then the
core keys, then the plugins and their sections (a later stage needs the earlier ones to pass).
Values taken from the environment are never shown in a message, in core and plugin sections alike.
"""

from __future__ import annotations

import logging
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml
from pydantic import BaseModel, ValidationError

from gateway.errors import ConfigError, ConfigProblem, PluginError
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

Path_ = tuple[Any, ...]
Secrets = dict[Path_, tuple[str, ...]]  # key path -> environment-derived strings its value contains
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_HIDDEN = "<a value from the environment>"
# pydantic's wording names Python types; operators write YAML lists and mappings.
_YAML_WORDING = {
    **dict.fromkeys(("tuple_type", "list_type", "set_type", "frozen_set_type"), "input should be a list"),
    **dict.fromkeys(("model_type", "model_attributes_type", "dict_type"),
                    "input should be a mapping (key: value lines)"),
}


def load_config(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    check_plugins: bool = True,
    extra_plugins: Sequence[object] = (),
    path_hint: str = "give the path of an existing file",
) -> GatewaySettings:
    """Read, substitute and validate the YAML at ``path``.

    With ``check_plugins`` (the default) the listed plugins are loaded and every configured
    component's settings are validated too. What only start-up checks (files a plugin reads,
    connections, the speaker model) is listed in docs/configuration.md. ``path_hint`` says how
    the caller's command takes the path, for the missing-file message. Raises
    :class:`ConfigError` listing the problems of the first stage that has any.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [ConfigProblem(file, None, "", "the configuration file does not exist",
                           f"Create it (copy config/gateway.yaml) or {path_hint}")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(file, None, "", f"cannot read the file ({exc})", "Check its permissions and encoding (UTF-8)")]) from None
    config_dir = str(Path(path).resolve().parent)
    settings = parse_config(text, file=file, config_dir=config_dir, environ=environ, check_urls=True)
    if check_plugins:
        from gateway.plugin_manager import load_plugins

        try:
            plugins = load_plugins(settings.plugins, extra_plugins)
        except PluginError as exc:
            # a plugin name may come from ${VAR}: the message quotes it
            message = _scrub(str(exc), _values_under(settings.secret_paths, ("plugins",))).rstrip(".")
            raise ConfigError([ConfigProblem(file, settings.line_of(("plugins",)), "plugins", message, "")]) from exc
        problems = component_problems(settings, plugins.components)
        if problems:
            raise ConfigError(problems)
        for warning in unused_plugins(settings, plugins.components):
            log.warning("%s", warning)
    return settings


def unused_plugins(settings: GatewaySettings, components: Any) -> list[str]:
    """A warning for each enabled plugin that registers components of which the file configures none.

    Not an error: a plugin may be enabled ahead of its settings. But a channel plugin listed without its
    ``channels:`` entry is simply not opened, which an operator should hear about.
    """
    used = {("channel", name) for name in settings.channels}
    used |= {("bot", use.use) for use in settings.bots} | {("CRM backend", use.use) for use in settings.crm}
    if settings.authentication is not None:
        used |= {("authenticator", name) for name in (settings.authentication.use, *settings.authentication.authenticators)}
    provided: dict[str, list[tuple[str, str]]] = {}
    for kind, registered in (("channel", components.channels), ("bot", components.bots),
                             ("CRM backend", components.crm), ("authenticator", components.authenticators)):
        for name, entry in registered.items():
            provided.setdefault(entry.plugin, []).append((kind, name))
    where = {"channel": "channels.{}", "bot": "bots[].use: {}", "CRM backend": "crm[].use: {}",
             "authenticator": "authentication.authenticators.{}"}
    warnings = []
    for plugin in settings.plugins:
        offered = provided.get(plugin, [])
        if offered and not any(item in used for item in offered):
            names = ", ".join(f"{kind} '{name}'" for kind, name in offered)
            places = " or ".join(where[kind].format(name) for kind, name in offered)
            warnings.append(f"{settings.config_path}: plugin '{plugin}' is enabled but nothing it provides ({names}) is "
                            f"configured, so it does nothing; add {places}, or remove it from plugins")
    return warnings


def parse_config(
    text: str, *, file: str = "<string>", config_dir: str | None = None, environ: Mapping[str, str] | None = None,
    check_urls: bool = False,
) -> GatewaySettings:
    """Validate YAML ``text`` as the gateway configuration (no plugins loaded).

    ``check_urls`` also checks ``database.url`` and ``coordination.redis_url`` as start-up would use them
    (:func:`load_config` does); off by default because operator tools parse with unset variables filled in
    (empty or a placeholder) and never connect.
    """
    env = os.environ if environ is None else environ
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = f"invalid YAML: {exc.problem or exc}"
        # Where the parser noticed is often lines after the cause (an unclosed quote swallows what follows); the
        # construct it was inside starts nearer to it.
        if exc.context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
            problem += f" ({exc.context} that starts at line {exc.context_mark.line + 1})"
        raise ConfigError(
            [ConfigProblem(file, line, "", problem, "Fix the syntax (indentation, a missing ':' or quote)")]
        ) from None
    if node is None:
        data: Any = {}
        lines: dict[Path_, int] = {}
    else:
        problems: list[ConfigProblem] = []
        lines = {}
        _index_lines(node, (), lines, problems, file)
        if problems:
            raise ConfigError(problems)
        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(file, 1, "", f"expected a mapping of sections, found {type(data).__name__}",
                                         "Start the file with keys such as 'server:' and 'plugins:'")])
    secrets: Secrets = {}
    problems = []
    data = _substitute(data, (), env, secrets, problems, file, lines)
    if problems:
        raise ConfigError(problems)
    try:
        settings = GatewaySettings.model_validate(data, context={"check_urls": check_urls})
    except ValidationError as exc:
        raise ConfigError(_problems(exc, file, lines, secrets, GatewaySettings)) from None
    return settings.with_source(config_path=file, config_dir=config_dir or str(Path.cwd()), lines=lines,
                                secrets=secrets)


def component_problems(settings: GatewaySettings, components: Any) -> list[ConfigProblem]:
    """Problems with the component sections: unknown component names and invalid plugin settings.

    ``components`` is a :class:`gateway.plugin_manager.Components`.
    """
    file = settings.config_path or "<settings>"
    problems: list[ConfigProblem] = []

    def check(kind: str, registered: Mapping[str, Any], name: str, raw: Any, name_path: Path_, settings_path: Path_) -> None:
        entry = registered.get(name)
        if entry is None:
            known = ", ".join(sorted(registered)) or "none"
            shown = _HIDDEN if name_path in settings.secret_paths else f"'{name}'"  # e.g. use: ${BOT}
            problems.append(ConfigProblem(
                file, settings.line_of(name_path), _dotted(name_path), f"no loaded plugin provides a {kind} named {shown}",
                f"Registered {kind}s: {known}. Add the plugin that provides it to 'plugins' or fix the name",
            ))
            return
        problems.extend(_section_problems(settings, entry.spec.settings_model, raw, settings_path)[1])

    for name, raw in settings.channels.items():
        check("channel", components.channels, name, raw, ("channels", name), ("channels", name))
    for i, use in enumerate(settings.bots):
        check("bot", components.bots, use.use, use.settings, ("bots", i, "use"), ("bots", i, "settings"))
    for i, use in enumerate(settings.crm):
        check("CRM backend", components.crm, use.use, use.settings, ("crm", i, "use"), ("crm", i, "settings"))
    auth = settings.authentication
    if auth is not None:
        names = dict(auth.authenticators)
        names.setdefault(auth.use, {})
        for name, raw in names.items():
            name_path = ("authentication", "use") if name == auth.use and name not in auth.authenticators else (
                "authentication", "authenticators", name)
            check("authenticator", components.authenticators, name, raw, name_path, ("authentication", "authenticators", name))
    return problems


M = typing.TypeVar("M", bound=BaseModel)


def plugin_section(settings: GatewaySettings, model: type[M], path: Path_) -> M:
    """The plugin settings at ``path`` (e.g. ``("authentication", "authenticators", "voice")``) validated against
    ``model``, for tools that need one plugin's settings without building the gateway; :class:`ConfigError` with
    file:line problems exactly as at start-up."""
    raw: Any = settings.model_dump()
    for key in path:
        raw = raw.get(key) if isinstance(raw, Mapping) else None
    value, problems = _section_problems(settings, model, raw, path)
    if problems:
        raise ConfigError(problems)
    assert value is not None
    return value


def _section_problems(settings: GatewaySettings, model: type[M], raw: Any,
                      path: Path_) -> tuple[M | None, list[ConfigProblem]]:
    try:
        return model.model_validate(raw or {}), []
    except ValidationError as exc:
        # the section's key paths are the YAML's, so the loader's record of ${VAR} values applies here too
        return None, _problems(exc, settings.config_path or "<settings>", settings._lines, settings.secret_paths,
                               model, prefix=path)


def resolved_database_url(settings: GatewaySettings) -> str:
    """``database.url`` with a relative SQLite path made absolute against the config folder."""
    url = settings.database.url
    match = re.match(r"^(sqlite(?:\+\w+)?:///)(.+)$", url)
    if match and not match.group(2).startswith("/") and match.group(2) != ":memory:":
        return match.group(1) + settings.resolve_path(match.group(2))
    return url


# --------------------------------------------------------------------------- helpers


def _index_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int], problems: list[ConfigProblem], file: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            child = path + (key,)
            if key in seen:
                problems.append(ConfigProblem(file, key_node.start_mark.line + 1, _dotted(child),
                                              "the key appears twice in the same mapping", "Keep one of them"))
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _index_lines(value_node, child, lines, problems, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _index_lines(item, path + (index,), lines, problems, file)


def _substitute(value: Any, path: Path_, env: Mapping[str, str], secrets: Secrets,
                problems: list[ConfigProblem], file: str, lines: dict[Path_, int]) -> Any:
    """``value`` with every ``${VAR}`` replaced; records in ``secrets`` which paths hold environment values."""
    if isinstance(value, dict):
        return {k: _substitute(v, path + (k,), env, secrets, problems, file, lines) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, path + (i,), env, secrets, problems, file, lines) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    if _unterminated(value, path, problems, file, lines):
        return value
    used: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            used.append(env[name])
            return env[name]
        if default is not None:
            return default
        problems.append(ConfigProblem(
            file, lines.get(path), _dotted(path), f"environment variable {name} is not set",
            f"Export it (export {name}=...) or give a default with ${{{name}:-value}}",
        ))
        return ""

    result = _VAR.sub(replace, value)
    # the environment values and the whole result: a message may quote either
    secrets[path] = tuple(v for v in {*used, result} if v) if used else ()
    return result


def _unterminated(value: str, path: Path_, problems: list[ConfigProblem], file: str, lines: dict[Path_, int]) -> bool:
    """Report a ``${`` that does not open a valid ``${NAME}``/``${NAME:-default}`` (left as is, it would become the
    value: a secret reading literally ``${VOICEGATE_REST_SECRET``)."""
    for start in (m.start() for m in re.finditer(r"\$\{", value)):
        if _VAR.match(value, start) is None:
            problems.append(ConfigProblem(
                file, lines.get(path), _dotted(path),
                "'${' does not start a valid environment variable reference (a missing '}' or a bad name)",
                "Write ${NAME} or ${NAME:-default}, NAME made of letters, digits and '_', with the closing '}'",
            ))
            return True
    return False


def _problems(exc: ValidationError, file: str, lines: Mapping[Path_, int], secrets: Mapping[Path_, tuple[str, ...]],
              model: type[BaseModel], prefix: Path_ = ()) -> list[ConfigProblem]:
    found: list[ConfigProblem] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        path = prefix + loc
        line = _line(lines, path)
        kind = error["type"]
        ctx = error.get("ctx") or {}
        if kind == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1])
            problem = "unknown key"
            hint = "Remove it or fix the spelling" + (f"; allowed keys here: {', '.join(allowed)}" if allowed else "")
        elif kind == "missing":
            problem = "a required key is missing"
            hint = "Add it"
        else:
            problem = _YAML_WORDING.get(kind) or f"{error['msg'][0].lower()}{error['msg'][1:]}"
            hint = str(ctx.get("hint", "Fix the value"))
            # Under a ${VAR} value, or above one (a whole section as input): show neither the input nor any message
            # that quotes an environment value (a plugin's own validator may).
            values = _values_under(secrets, path) + _values_above(secrets, path)
            if _overlaps_secret(secrets, path):
                if any(v in problem for v in values):
                    problem = f"{_HIDDEN} is not valid here ({kind}; the details would show it)"
            else:
                problem += f", found {ctx['found'] if 'found' in ctx else error.get('input')!r}"
        found.append(ConfigProblem(file, line, _dotted(path), problem, hint))
    return found


def _overlaps_secret(secrets: Mapping[Path_, tuple[str, ...]], path: Path_) -> bool:
    """Whether ``path`` holds, or lies inside, a value that came from ``${VAR}``."""
    return any(s[: len(path)] == path or path[: len(s)] == s for s in secrets)


def _values_under(secrets: Mapping[Path_, tuple[str, ...]], path: Path_) -> tuple[str, ...]:
    """The environment-derived strings at ``path`` or inside it."""
    return tuple(v for s, values in secrets.items() if s[: len(path)] == path for v in values)


def _values_above(secrets: Mapping[Path_, tuple[str, ...]], path: Path_) -> tuple[str, ...]:
    """The environment-derived strings of a value that contains ``path``."""
    return tuple(v for s, values in secrets.items() if path[: len(s)] == s and s != path for v in values)


def _scrub(text: str, values: Sequence[str]) -> str:
    """``text`` with every environment-derived value replaced by a placeholder, longest first."""
    for value in sorted(set(values), key=len, reverse=True):
        text = text.replace(value, _HIDDEN)
    return text


def _line(lines: Mapping[Path_, int], path: Path_) -> int | None:
    for end in range(len(path), -1, -1):
        if tuple(path[:end]) in lines:
            return lines[tuple(path[:end])]
    return None


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed_keys(model: Any, loc: Path_) -> list[str]:
    """The keys a nested model at ``loc`` accepts (for 'unknown key' hints)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) in (tuple, list) and isinstance(part, int):
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation
