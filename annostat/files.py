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
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_UMASK = os.umask(0o022)
os.umask(_UMASK)
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


def inside(root: str | os.PathLike, name: Any) -> Path | None:
    """``root / name`` if it stays inside ``root`` once resolved (``..``, absolute names and symbolic links that point
    out all leave it), else None: the one check before annostat reads a file a label or a table named."""
    base = Path(root).resolve()
    try:
        path = (base / str(name)).resolve()
    except (OSError, ValueError):  # a name with a NUL byte, a loop of links
        return None
    return path if path != base and path.is_relative_to(base) else None


def remove_stale(folder: str | os.PathLike, names: Any, keep: Any) -> list[str]:
    """Remove the entries ``names`` of ``folder`` (files or folders an earlier run wrote there) that are not in
    ``keep``; returns what was removed. Only names given are ever touched."""
    import shutil

    removed = []
    for name in sorted(set(names) - set(keep)):
        path = Path(folder) / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        else:
            continue
        removed.append(name)
    return removed


def read_json(path: str | os.PathLike, what: str = "JSON", hint: str = "") -> Any:
    """The JSON document in ``path``; a one-line :class:`~annostat.errors.InputError` naming the file if it is missing,
    a folder, not UTF-8 or not JSON (``what`` names the kind of file, ``hint`` says how to make one)."""
    from annostat.errors import InputError

    path = Path(path)
    hint = f"; {hint}" if hint else ""
    if not path.is_file():
        raise InputError(f"{path}: {'is a folder' if path.is_dir() else 'file not found'} (expected {what}){hint}")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}), so not {what}{hint}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}), so not {what}{hint}") from None


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Call ``write(temporary path)`` next to ``path``, then move the result into place: a reader never sees a
    half-written file, and a failed write leaves nothing behind."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # as an ordinary write would leave it, not mkstemp's owner-only 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
