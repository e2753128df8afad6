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
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

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
    tmp = _temporary_beside(path)
    try:
        write(tmp)
        _move_into_place(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class WriteAhead:
    """:func:`atomic_write` started early: ``write(temporary path)`` runs on a worker thread (beside ``path``, under
    a hidden temporary name) while the caller goes on, :meth:`place` waits for it and moves the file into place, and
    leaving the ``with`` block without placing it removes it. ``holds`` says what the file was written from, so a
    later writer can tell whether the file is the one it would write.

    A fit folder's ``votes.parquet`` is written so while the model fits (``annostat fit``): at 100M votes ~10 s of
    encoding that otherwise waits for the fit."""

    def __init__(self, path: str | os.PathLike, write: Callable[[str], Any], holds: Any = None) -> None:
        self.path, self.holds = Path(path), holds
        self._made = not self.path.parent.exists()  # a folder made for the file goes again if it is not placed
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = _temporary_beside(self.path)
        self._error: BaseException | None = None
        self._placed = False

        def run() -> None:
            try:
                write(self._tmp)
            except BaseException as exc:  # noqa: BLE001 -- raised again by place(), in the caller's thread
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"write {self.path.name}", daemon=True)
        self._thread.start()

    def place(self) -> Path:
        """Wait for the write and move the file into place (a failed write raises its error here)."""
        self._thread.join()
        if self._error is not None:
            Path(self._tmp).unlink(missing_ok=True)
            raise self._error
        _move_into_place(self._tmp, self.path)
        self._placed = True
        return self.path

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        if not self._placed:
            self._thread.join()
            Path(self._tmp).unlink(missing_ok=True)
            if self._made and not any(self.path.parent.iterdir()):
                self.path.parent.rmdir()


def _temporary_beside(path: Path) -> str:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return tmp


def _move_into_place(tmp: str, path: Path) -> None:
    os.chmod(tmp, 0o666 & ~_UMASK)  # as an ordinary write would leave it, not mkstemp's owner-only 0600
    os.replace(tmp, path)
