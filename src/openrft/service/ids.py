"""Object ids in OpenAI's style: `file-…`, `chatcmpl-…`, and a check that an id can name a file."""

from __future__ import annotations

import re
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_SAFE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def new_id(prefix: str, length: int = 24) -> str:
    """`prefix` + `length` random letters and digits, e.g. new_id("file-") -> "file-3kT9…"."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def is_safe(object_id: str) -> bool:
    """Whether an id can name a file or folder: letters, digits, '-' and '_' only (no '/', no '..')."""
    return bool(_SAFE.match(object_id)) and object_id not in {".", ".."}
