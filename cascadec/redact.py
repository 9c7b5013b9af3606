"""The one redaction of secrets, before any text reaches a client, a terminal or a log.

An upstream's error can echo what it was sent (``Authorization: Bearer …``), a URL can carry a
key (``?api_key=…``, ``https://user:pass@host``), a library can print a key it was given. Every
message cascadec builds passes through :func:`redact`: :class:`cascadec.errors.CascadecError`
redacts its message when it is made (so every CLI error, every backend error and every serve
error body is redacted), and :func:`install_log_redaction` redacts every log record of the
process (messages, arguments — the access log's path — and tracebacks).

What is redacted: bearer tokens, ``Authorization:`` values, ``api_key=`` / ``token=`` /
``password=`` / ``secret=`` values (URL query, JSON, headers), ``sk-…``-style keys (OpenAI,
Hugging Face ``hf_…``, GitHub ``ghp_…``, Slack ``xox…``, AWS ``AKIA…``), a URL's user and
password, and the value of every key cascadec was configured with (:func:`register_secret`).
"""

from __future__ import annotations

import logging
import re
import threading
import traceback

MARK = "[redacted]"
_MIN_SECRET = 4  # a configured key shorter than this is not searched for (it would hit ordinary text)
_NOT_SECRETS = frozenset({"EMPTY", "none", "None", "null", "dummy", "test"})
_secrets: set[str] = set()
_lock = threading.Lock()

_KEYS = (
    r"api[_-]?key|apikey|x-api-key|access[_-]?token|auth[_-]?token|refresh[_-]?token|id[_-]?token"
    r"|client[_-]?secret|secret[_-]?key|secret|password|passwd|token"
)
_PATTERNS: tuple[tuple[re.Pattern, str], ...] = (
    # a URL's user:password@
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]*@"), r"\1" + MARK + "@"),
    # Authorization: <scheme> <value> (header, JSON, repr)
    (
        re.compile(
            r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token|digest)\s+)?[^\s\"',;}\]]{8,}"
        ),
        r"\1" + MARK,
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + MARK),
    # key=value, key: value, "key": "value" (query strings, JSON, headers, repr)
    (
        re.compile(
            rf"(?i)(?<![A-Za-z0-9])((?:{_KEYS})[\"']?\s*(?:=|:(?!//))\s*[\"']?)(?!{re.escape(MARK)})"
            r"[^\s\"'&,;}\]\)]+"
        ),
        r"\1" + MARK,
    ),
    # well-known key shapes, wherever they appear
    (re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}"), MARK),
    (re.compile(r"\bhf_[A-Za-z0-9]{16,}"), MARK),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), MARK),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), MARK),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), MARK),
)


def register_secret(value: str | None) -> None:
    """Redact ``value`` (a key this process was configured with) wherever it appears from now on."""
    if value and len(value) >= _MIN_SECRET and value not in _NOT_SECRETS:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every secret it holds replaced by ``[redacted]``."""
    if not isinstance(text, str) or not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MARK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


# --- logs ----------------------------------------------------------------------------------------
_installed = False


def install_log_redaction() -> None:
    """Redact every log record this process makes (message, string arguments, traceback); idempotent."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            if isinstance(record.msg, str):
                record.msg = redact(record.msg)
            if isinstance(record.args, tuple):
                record.args = tuple(
                    redact(a) if isinstance(a, str) else _redact_other(a) for a in record.args
                )
            elif isinstance(record.args, dict):
                record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        except Exception:  # a log record must never fail to be made
            pass
        return record

    logging.setLogRecordFactory(factory)


def _redact_other(value):
    """An argument that is not a string (an exception, say) is shown by its redacted text."""
    if isinstance(value, BaseException):
        text = str(value)
        red = redact(text)
        return red if red != text else value
    return value
