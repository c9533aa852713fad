"""One place that removes credentials from text: every line the CLI prints, every log record
(through :class:`RedactingFilter`) and every error message shown to a user goes through
:func:`redact`.

What is removed (the value is replaced by ``REDACTED``, the name stays so a reader still sees
that a credential was there):

* URL query parameters that are secrets, after ``?`` or ``&`` (also percent-encoded ``%3F`` /
  ``%26``, as in a URL nested inside another one): :data:`QUERY_SECRETS`, the SAS signature
  ``sig`` and the user-delegation SAS identities ``skoid``/``sktid``/``saoid``/``suoid``, and
  ``code`` (Functions keys), ``token``, ``access_token`` and the like. ``sv``, ``se``, ``st``,
  ``sp``, ``sr``, ``spr``, ``ss``, ``srt``, ``skt``, ``ske``, ``sks``, ``skv`` stay: they say
  which version, expiry and permissions a SAS has, which is what someone debugging needs, and
  without ``sig`` they grant nothing.
* ``name=value`` pairs of connection strings and client settings, wherever they appear:
  :data:`SETTING_SECRETS` (``AccountKey=``, ``SharedAccessKey=``, ``SharedAccessSignature=``,
  ``Password=``, Kusto's ``AppKey=``/``Application Key=``, librdkafka's ``sasl.password=``,
  ``sig=`` anywhere ...); the value runs to ``;``, ``&``, a quote or white space.
* The same names as quoted keys (``"password": "..."``, ``'sig': '...'``): dict and JSON dumps.
* ``Bearer``/``Basic`` credentials of an ``Authorization`` header, and anything shaped like a
  JWT (``eyJ...``.``...``.``...``): Entra ID and OAUTHBEARER tokens.
* Literal values registered with :func:`register_secret` (the signature of
  ``DEADLETTER_BLOB_URI``, ``KAFKA_PASSWORD``), in whatever form they show up (raw,
  percent-encoded or decoded), for texts no pattern foresaw.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import parse_qsl, quote, unquote, urlsplit

REDACTED = "REDACTED"

QUERY_SECRETS: tuple[str, ...] = (
    "sig", "skoid", "sktid", "saoid", "suoid",
    "code", "token", "access_token", "refresh_token", "id_token", "client_secret", "client_assertion",
    "password", "pwd", "secret", "api-key", "api_key", "apikey", "subscription-key",
)  # fmt: skip
"""URL query parameters whose value is a credential (matched case-insensitively)."""

SETTING_SECRETS: tuple[str, ...] = (
    "sig", "AccountKey", "SharedAccessKey", "SharedAccessSignature", "Password", "Pwd",
    "AppKey", "ApplicationKey", "Application Key", "AppToken", "Application Token", "UserToken", "User Token",
    "ClientSecret", "Client Secret", "client_secret",
    "sasl.password", "ssl.key.password", "sasl.oauthbearer.client.secret",
)  # fmt: skip
"""``name=value`` settings whose value is a credential, in connection strings and client
configurations (matched case-insensitively, ``KAFKA_PASSWORD=`` included)."""

_QUOTED_KEYS: tuple[str, ...] = (
    *QUERY_SECRETS, *SETTING_SECRETS, "authorization", "x-ms-encryption-key",
)  # fmt: skip


def _names(names: tuple[str, ...]) -> str:
    # Longest first, so that "access_token" wins over "token" and "SharedAccessKey" over "Key".
    unique = sorted({n.lower() for n in names}, key=len, reverse=True)
    return "|".join(re.escape(n).replace(r"\ ", r"\s*") for n in unique)


# A query value ends at the next parameter, quote, white space or fragment; in a nested,
# percent-encoded URL it ends at "%26" (an encoded "&").
_QUERY = re.compile(
    rf"(?P<pre>(?:[?&]|&amp;|%3[Ff]|%26)(?:{_names(QUERY_SECRETS)})(?:=|%3[Dd]))(?P<value>(?:(?!%26)[^&\s\"'<>#\\])+)",
    re.IGNORECASE,
)
# Not preceded by a letter or digit: "KAFKA_PASSWORD=" and "sasl.password=" match,
# "nopassword=" does not.
_SETTING = re.compile(
    rf"(?P<pre>(?<![A-Za-z0-9])(?:{_names(SETTING_SECRETS)})\s*=\s*)(?P<value>[^;&\s\"'<>,\\]+)",
    re.IGNORECASE,
)
_QUOTED = re.compile(
    rf"(?P<pre>(?P<q>[\"'])(?:{_names(_QUOTED_KEYS)})(?P=q)\s*:\s*(?P<q2>[\"']))(?P<value>.*?)(?=(?P=q2))",
    re.IGNORECASE,
)
_AUTH_SCHEME = re.compile(r"(?P<pre>\b(?:Bearer|Basic)\s+)(?P<value>[A-Za-z0-9\-._~+/]{8,}=*)", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")

_PATTERNS = (_QUERY, _SETTING, _QUOTED, _AUTH_SCHEME)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_secret_pattern: re.Pattern[str] | None = None

# Shorter literals would redact ordinary words; real keys and signatures are far longer.
MIN_SECRET_LENGTH = 8


def register_secret(value: str | None) -> None:
    """Redact this literal value wherever it appears from now on (with its percent-encoded and
    decoded forms). Values shorter than :data:`MIN_SECRET_LENGTH` are ignored."""
    global _secret_pattern
    if not value:
        return
    forms = {value, quote(value, safe=""), unquote(value)}
    with _secrets_lock:
        _secrets.update(form for form in forms if len(form) >= MIN_SECRET_LENGTH)
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None


def register_uri_secrets(uri: str | None) -> None:
    """Register the secret query values of a URI (the ``sig`` of a SAS URI, ...)."""
    if not uri:
        return
    wanted = {name.lower() for name in QUERY_SECRETS}
    for name, value in parse_qsl(urlsplit(uri).query, keep_blank_values=False):
        if name.lower() in wanted:
            register_secret(value)
            register_secret(quote(value, safe=""))


def _replace(match: re.Match[str]) -> str:
    return match.group("pre") + REDACTED


def redact(text: str) -> str:
    """``text`` without credentials (see the module docstring for what is removed)."""
    if not text:
        return text
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    for regex in _PATTERNS:
        text = regex.sub(_replace, text)
    return _JWT.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """A handler filter that redacts a record's message, its traceback and its stack before
    any formatter sees them (the record is changed in place, so every handler gets the
    redacted text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record``; never drops it."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call: leave it to the handler's own error path
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            # Formatters cache the formatted traceback in exc_text and reuse it: fill it here,
            # redacted, so no formatter formats the raw exception text itself.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


def install_log_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Put the redacting filter on every handler of ``logger`` (default: the root logger) and
    on logging's last-resort handler; idempotent. Call it once the handlers exist (the CLI
    does in ``main``; the function app at start-up)."""
    target = logger or logging.getLogger()
    handlers = list(target.handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    return _FILTER
