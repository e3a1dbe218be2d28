"""Owner-only files and directories: state, its journal and backups, lock files, the
simulator's data, digest keys. A leaf module (imports nothing of ours), so the engine, the
simulator and the Terraform provider share one definition.

Permissions are set explicitly rather than left to the umask (``0o022`` is the common
default, which makes new files world-readable), and tightened on directories and files an
older version created with looser modes.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "private_dir", "private_file"]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (and its parents) if needed and make it 0700. Parents that already
    exist keep their mode: only the directory we own is tightened."""
    p = Path(path)
    p.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if p.stat().st_mode & 0o777 != PRIVATE_DIR:
        os.chmod(p, PRIVATE_DIR)
    return p


def private_file(path: str | Path) -> Path:
    """Create ``path`` empty if it does not exist, 0600 either way (so a program that opens it
    afterwards, such as SQLite, never creates it with the umask's mode)."""
    p = Path(path)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    try:
        if os.fstat(fd).st_mode & 0o777 != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return p
