"""Logging in one place, for gunicorn (its error log and access log) and the application alike: plain text
(gunicorn's own layout) or one JSON object a line, chosen by KRUISPUNT_LOG_FORMAT."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from gunicorn.glogging import Logger as _GunicornLogger

from integrator.config import FORMAT_VARIABLE, LOG_FORMATS

APP_LOGGERS = ("kruispunt", "py.warnings")  # the application's loggers, and warnings.warn through logging
TEXT_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"
TEXT_DATE = "[%Y-%m-%d %H:%M:%S %z]"  # gunicorn's
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_ACCESS_FIELDS = {"h": "remote_addr", "m": "method", "U": "path", "q": "query", "s": "status", "B": "bytes",
                  "a": "user_agent", "f": "referer"}
_MARK = "_kruispunt"  # on the handlers configure() installed, so a second call replaces them


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ms), level, logger, pid, message, and the record's extra fields; an
    access-log record of gunicorn's also carries its request's fields and the ticket it was answered with."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.name == "gunicorn.access" and isinstance(record.args, dict):
            line.update(_access_fields(record.args))
        line.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED and not k.startswith("_")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def _access_fields(atoms: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {name: atoms.get(atom) for atom, name in _ACCESS_FIELDS.items()}
    status = fields["status"]
    fields["status"] = int(status) if isinstance(status, str) and status.isdigit() else status
    duration = atoms.get("D")
    fields["duration_ms"] = round(duration / 1000, 3) if isinstance(duration, int) else None
    ticket = atoms.get("{x-kruispunt-ticket}o")
    if ticket and ticket != "-":
        fields["ticket"] = ticket
    return {k: v for k, v in fields.items() if v not in (None, "", "-")}


def formatter(format: str) -> logging.Formatter:
    """The formatter of a log format: JSON, or text in gunicorn's layout with the logger's name."""
    if format == "json":
        return JsonFormatter()
    if format == "text":
        return logging.Formatter(TEXT_FORMAT, TEXT_DATE)
    raise ValueError(f"{FORMAT_VARIABLE}={format!r}: expected one of {', '.join(LOG_FORMATS)}")


def configure(format: str, handlers: list[logging.Handler] | None = None) -> None:
    """Send the application's log lines (level INFO and up, warnings.warn too) to `handlers` (default: one on
    stderr), each given the formatter of `format`. Called again, it replaces what it installed before."""
    handlers = [logging.StreamHandler()] if handlers is None else handlers
    for handler in handlers:
        handler.setFormatter(formatter(format))
        setattr(handler, _MARK, True)
    logging.captureWarnings(True)
    for name in APP_LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, _MARK, False) or h in handlers]:
            logger.removeHandler(old)
        for handler in handlers:
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def format_from_env(environ: dict[str, str] | None = None) -> str:
    """KRUISPUNT_LOG_FORMAT, text by default (Settings.from_env refuses any other value at start-up)."""
    env = os.environ if environ is None else environ
    value = (env.get(FORMAT_VARIABLE) or "text").strip().lower()
    return value if value in LOG_FORMATS else "text"


class GunicornLogger(_GunicornLogger):
    """gunicorn's logger (error log, access log, their files, reopening on USR1) with our formatter on its error
    log, and on its access log in JSON (in text the access log keeps its Apache layout); the application's
    loggers write to the error log. Set up in the master, so the workers inherit it, and again at every reload."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        format = format_from_env()
        if format == "json":
            for handler in self.access_log.handlers:
                handler.setFormatter(formatter(format))
        configure(format, list(self.error_log.handlers) or None)
