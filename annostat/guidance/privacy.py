"""Privacy of the advice: everything meant to be shared uses pseudonyms, ``v-`` and 12 hex digits of a salted SHA-256
of the name (``keep_names`` opts out); the salt and the name map are written under ``private/`` only. File names are
built from pseudonyms (or, keeping names, :func:`annostat.files.safe_file_name`), so no name can escape the folder or
clash; HTML is escaped (``annostat.guidance.cards``); IP addresses are never read.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import pandas as pd

from annostat.files import safe_file_name


def pseudonym(name: str, salt: str) -> str:
    """``v-`` and 12 hex digits of SHA-256(salt, name): stable for a salt, not reversible without it."""
    return "v-" + hashlib.sha256(f"{salt}\x00{name}".encode()).hexdigest()[:12]


def name_maps(names: list[str], keep_names: bool, salt: str) -> tuple[dict[str, str], dict[str, str]]:
    """(name -> name shown, name -> file stem) for every volunteer: pseudonyms, or the names with safe file names."""
    shown = {n: n for n in names} if keep_names else {n: pseudonym(n, salt) for n in names}
    files = {n: (safe_file_name(n) if keep_names else shown[n]) for n in names}
    return shown, files


def new_salt() -> str:
    return secrets.token_hex(16)


def write_private(out: Path, shown: dict[str, str], salt: str | None) -> None:
    """``private/``: a README saying it is not for sharing, the salt (when names are pseudonymised) and the name map;
    readable by the owner only (the folder 0700, its files 0600), whatever the umask gives the shareable outputs."""
    private = out / "private"
    private.mkdir(parents=True, exist_ok=True)
    os.chmod(private, 0o700)
    (private / "README.txt").write_text(
        "Not for sharing: the salt of the pseudonyms and the map from pseudonym to volunteer name.\n", encoding="utf-8"
    )
    if salt is not None:
        (private / "salt.txt").write_text(salt + "\n", encoding="utf-8")
    pd.DataFrame({"volunteer": list(shown), "shown_as": list(shown.values())}).to_csv(
        private / "names.csv", index=False
    )
    for path in private.iterdir():
        os.chmod(path, 0o600)
