"""Files on disk: safe file names from any label, and atomic writes.

:func:`safe_file_name` is the one place a subject id, volunteer name, question or answer becomes part of a file name:
letters, digits, ``.``, ``-`` and ``_`` only, never a path, never hidden, never empty; a name that had to be changed
gets a short hash of the original, and so does a safe name that looks like such a result, so two different labels
never share a file (``a b`` and ``a/b`` differ, and neither becomes a third label's name).

    >>> safe_file_name("smooth-or-featured"), safe_file_name("../../etc/passwd")
    ('smooth-or-featured', 'etc-passwd-3754d6cb')
    >>> safe_file_name("a b") != safe_file_name("a/b")
    True
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_HASHED = re.compile(r"-[0-9a-f]{8}$")  # what a changed name ends with


def safe_file_name(name: Any, max_length: int = 80) -> str:
    """A file name (without folder) for ``name``: ``name`` itself when it is already safe (and does not end as a
    changed name does), else a cleaned slug plus 8 hex digits of its SHA-256."""
    text = str(name)
    slug = _UNSAFE.sub("-", text).strip(".-")[:max_length]
    if slug == text and slug and not _HASHED.search(slug):
        return slug
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug or 'file'}-{digest}"


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Call ``write(temporary path)`` next to ``path``, then move the result into place: a reader never sees a
    half-written file, and a failed write leaves nothing behind."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
