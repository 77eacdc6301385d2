"""File helpers shared by the stages that publish or check files."""

import hashlib
import os
import secrets
from pathlib import Path


def sha256_of(path):
    """Hex SHA-256 digest of the file at path."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def write_whole(path, text):
    """Write text to path whole or not at all: a killed process leaves the old file or
    none, and concurrent writers never share a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        partial.write_text(text)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
