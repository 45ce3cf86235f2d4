"""A shop's own contact list (CSV) → Segment identify messages.

Columns are mapped with ``col=field``: ``user_id``, ``anonymous_id``,
``email``, ``phone``, ``consent.<channel>_<purpose>`` (yes/no, sim/não,
true/false, 1/0) or any other name, which becomes a trait of that name.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from jornada.errors import InvalidInput

_TRUE = {"1", "true", "yes", "y", "sim", "s", "x"}
_FALSE = {"0", "false", "no", "n", "nao", "não", ""}
_IDS = {"user_id": "userId", "anonymous_id": "anonymousId"}


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """``["E-mail=email", "Nome=name"]`` → ``{"E-mail": "email", "Nome": "name"}``."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.partition("=")
        if not sep or not column.strip() or not target.strip():
            raise InvalidInput(f"--map takes COLUMN=FIELD, not {pair!r}", field="map")
        mapping[column.strip()] = target.strip()
    return mapping


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def read_contacts(
    path: Path, mapping: Mapping[str, str], *, now: datetime
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``("file.csv:LINE", identify message)``; a bad cell is left for validation to name."""
    with _open(path) as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in mapping if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidInput(
                f"{path.name} has no column {', '.join(map(repr, missing))}; "
                f"its columns are {', '.join(reader.fieldnames or [])}",
                field="map",
            )
        for row in reader:
            where = f"{path.name}:{reader.line_num}"
            message: dict[str, Any] = {
                "type": "identify",
                "timestamp": now.isoformat(),
                "context": {"consent_source": f"csv import {path.name}"},
            }
            traits: dict[str, Any] = {}
            consent: dict[str, Any] = {}
            for column, target in mapping.items():
                value = (row.get(column) or "").strip()
                if target in _IDS:
                    if value:
                        message[_IDS[target]] = value
                elif target.startswith("consent."):
                    flag = value.lower()
                    consent[target.removeprefix("consent.")] = (
                        True if flag in _TRUE else False if flag in _FALSE else value
                    )
                elif value:
                    traits[target.removeprefix("traits.")] = value
            if consent:
                traits["consent"] = consent
            message["traits"] = traits
            if "userId" not in message and "anonymousId" not in message:
                # a list row with no id is still a person: their email or phone identifies them
                key = traits.get("email") or traits.get("phone") or ""
                message["anonymousId"] = f"csv:{key}" if key else f"csv:{where}"
            digest = hashlib.sha256(repr(sorted(row.items())).encode()).hexdigest()[:32]
            message["messageId"] = f"csv:{digest}"
            yield where, message
