"""What the roles' checks share: values read as Jinja reads them, and where a path lies (no third-party import)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean


def as_int(value: Any, default: int = 0) -> int:
    """What Jinja's ``int`` filter makes of ``value``: an int, a numeric string ("12", "3.0"), else ``default``."""
    if isinstance(value, int):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError, OverflowError):
            return default


def json_text(value: Any) -> str:
    """``value`` as Ansible's ``to_json`` writes it (for messages that quote what the operator wrote)."""
    return json.dumps(value, default=str)


def as_bool(value: Any) -> bool:
    """What Ansible's ``bool`` filter makes of ``value`` (its own converter): yes/true/on/1 are true, the rest false."""
    return boolean(value.strip() if isinstance(value, str) else value, strict=False)


def git_checkout_of(path: str) -> Path | None:
    """The git checkout (a directory with .git) that holds ``path``, or None: a key or a secret there is one
    ``git add -A`` away from being committed."""
    resolved = Path(path).resolve()
    return next((p for p in (resolved, *resolved.parents) if (p / ".git").exists()), None)
