"""integrator.faces.logs: one JSON object a line with the record's fields, or text; configure() replaces what it set."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from integrator.faces import logs


def record(message: str, *args: object, name: str = "kruispunt.request", **extra: object) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.INFO, __file__, 1, message, args or None, None)
    made.__dict__.update(extra)
    return made


def test_a_json_line_carries_time_level_message_and_the_extra_fields() -> None:
    line = logs.JsonFormatter().format(record("%s answered", "KP-1", ticket="KP-1", duration_ms=12.5,
                                              stages={"handle": 10.0}, organisation=None))
    parsed = json.loads(line)
    assert parsed["message"] == "KP-1 answered" and parsed["level"] == "INFO"
    assert parsed["logger"] == "kruispunt.request" and parsed["time"].endswith("Z")
    assert parsed["ticket"] == "KP-1" and parsed["duration_ms"] == 12.5 and parsed["stages"] == {"handle": 10.0}
    assert parsed["organisation"] is None
    assert "\n" not in line


def test_an_exception_stays_on_its_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        made = logging.LogRecord("kruispunt.x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    parsed = json.loads(logs.JsonFormatter().format(made))
    assert "RuntimeError: boom" in parsed["exception"]


def test_an_access_line_of_gunicorn_carries_the_request_and_its_ticket() -> None:
    atoms = {"h": "127.0.0.1", "m": "POST", "U": "/soap/X/v1", "q": "", "s": "200", "B": 512, "a": "zeep",
             "f": "-", "D": 12345, "{x-kruispunt-ticket}o": "KP-2"}
    made = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(h)s %(m)s", None, None)
    made.args = atoms
    parsed = json.loads(logs.JsonFormatter().format(made))
    assert parsed["message"] == "127.0.0.1 POST"
    assert parsed["status"] == 200 and parsed["duration_ms"] == 12.345 and parsed["ticket"] == "KP-2"
    assert "referer" not in parsed and "query" not in parsed


def test_configure_sends_the_application_lines_to_its_handlers_once() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("kruispunt.test_logs")
    try:
        logs.configure("json", [handler])
        logs.configure("json", [handler])  # again: still one handler, not two
        logger.info("hello %s", "there", extra={"ticket": "KP-3"})
        lines = stream.getvalue().splitlines()
        assert [json.loads(line)["ticket"] for line in lines] == ["KP-3"]
        logs.configure("text", [handler])
        logger.info("plain")
        assert stream.getvalue().splitlines()[-1].endswith("[INFO] kruispunt.test_logs: plain")
    finally:
        for name in logs.APP_LOGGERS:
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
        logging.captureWarnings(False)


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="KRUISPUNT_LOG_FORMAT='xml'"):
        logs.formatter("xml")
