"""Reading one environment variable: each reader checks the value it is given and names the
variable in its refusal (a :class:`~ussd.errors.ConfigError`). ``ussd/settings.py`` says which
variable each setting reads and its default; this module, how a value is read.
"""

from __future__ import annotations

from .errors import ConfigError

MIN_SECRET_LENGTH = 16  # tokens, passwords and keys: shorter ones are refused at start-up


LOG_FORMATS = ("text", "json")  # the first is the default


def port(name: str, value: str | None) -> int | None:
    if not value:
        return None
    port = number(name, value, 0)
    if not 1 <= port <= 65535:
        raise ConfigError(f"{name} must be a TCP port (1-65535), got {value!r}")
    return port


def choice(name: str, value: str | None, choices: tuple[str, ...]) -> str:
    if not value:
        return choices[0]
    if value.lower() not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value.lower()


def log_key(value: str | None) -> bytes | None:
    if not value:
        return None
    if len(value) < MIN_SECRET_LENGTH:
        raise ConfigError(f"USSD_LOG_KEY must be at least {MIN_SECRET_LENGTH} characters")
    return value.encode()


def flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def number(name: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if number < 0:
        raise ConfigError(f"{name} must not be negative, got {value!r}")
    return number


def seconds(name: str, value: str | None, default: float, most: float = 60,
            least: float | None = None) -> float:
    """Seconds up to ``most``, above 0 (``least`` None) or from ``least`` on; not NaN."""
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None
    if not ((seconds > 0 if least is None else seconds >= least) and seconds <= most):
        raise ConfigError(f"{name} must be between {least or 0:g} and {most:g} seconds, "
                          f"got {value!r}")
    return seconds


def codes(value: str | None) -> tuple[str, ...]:
    """USSD codes separated by ``,``, each checked (ConfigError for one that is not)."""
    from .gateways.fields import ServiceCodes

    found = tuple(code.strip() for code in (value or "").split(",") if code.strip())
    if found:
        ServiceCodes(found)
    return found


def user_password(name: str, value: str | None) -> str | None:
    """``user:password``, the password ``MIN_SECRET_LENGTH`` characters at least (None if
    unset)."""
    if not value:
        return None
    user, _, password = value.partition(":")
    if not user or len(password) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{name} must be user:password, the password at least "
                          f"{MIN_SECRET_LENGTH} characters")
    return value


def names(value: str) -> tuple[str, ...]:
    return tuple(name.strip().lower() for name in value.split(",") if name.strip())
