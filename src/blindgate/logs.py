"""Structured logs: one JSON object per line, with only the fields a record names in ``extra``.

Callers log ids, codes and exception class names only (never a body, header or field value);
this formatter adds nothing but time (UTC, ISO 8601 with milliseconds and its offset:
``2026-12-06T05:20:01.123+00:00``), level, logger and message. Every request a service
answers is one line from `blindgate.api.observe` (route, result code, request id, ms).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        return json.dumps(entry, default=str)


def configure(log_file: Path | None = None, level: int = logging.INFO) -> None:
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("blindgate")
    root.handlers[:] = [handler]
    root.setLevel(level)
