"""Recognising a write-ahead log that is not this database's.

SQLite ties a `-wal` file to nothing but its name: a WAL left beside the database by
another one (a copied or restored file, a crash of another program) is replayed over this
database's pages as if it were its own. The store therefore stamps every transaction it
writes with the database's random identity (the one row of `store_identity`), and before
the daemon opens the database it reads the WAL frames SQLite would replay: a WAL whose
committed transactions never carry that identity, or whose page size differs from the
database's, was written for another database.
"""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path
from urllib.parse import quote

WAL_MAGIC = (0x377F0682, 0x377F0683)
WAL_HEADER = struct.Struct(">8I")  # magic, version, page size, checkpoint, salt-1, salt-2, …
FRAME_HEADER = struct.Struct(">6I")  # page, database size after commit (0: none), salts, …


def database_identity(path: Path) -> tuple[bytes, int] | None:
    """The identity and page size of the database file alone, the WAL left unread (an
    immutable open never looks at it); None when the file does not say (new, foreign,
    written before identities existed)."""
    try:
        db = sqlite3.connect(f"file:{quote(str(path))}?immutable=1", uri=True)
    except sqlite3.Error:
        return None
    try:
        row = db.execute("SELECT id FROM store_identity").fetchone()
        (page_size,) = db.execute("PRAGMA page_size").fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return (bytes(row[0]), int(page_size)) if row and isinstance(row[0], bytes) else None


def committed_pages(wal: bytes) -> tuple[int, list[bytes]] | None:
    """The page size a WAL was written with and the pages of its committed frames (those
    SQLite would replay: salts of the header, up to the last commit); None if not a WAL."""
    if len(wal) < WAL_HEADER.size:
        return None
    magic, _, page_size, _, salt1, salt2, _, _ = WAL_HEADER.unpack_from(wal)
    if magic not in WAL_MAGIC:
        return None
    frame = FRAME_HEADER.size + page_size
    pages: list[bytes] = []
    committed: list[bytes] = []
    for offset in range(WAL_HEADER.size, len(wal) - frame + 1, frame):
        _, commit, frame_salt1, frame_salt2, _, _ = FRAME_HEADER.unpack_from(wal, offset)
        if (frame_salt1, frame_salt2) != (salt1, salt2):
            break  # what follows is from before the WAL was last restarted
        pages.append(wal[offset + FRAME_HEADER.size : offset + frame])
        if commit:
            committed = list(pages)
    return page_size, committed


def foreign_wal(path: Path) -> str | None:
    """Why the database's `-wal` belongs to another database, or None (absent, empty,
    this database's own, or nothing to tell it by)."""
    wal_path = Path(f"{path}-wal")
    try:
        wal = wal_path.read_bytes()
    except OSError:
        return None
    read = committed_pages(wal)
    if read is None or not read[1]:
        return None  # SQLite replays nothing from it
    own = database_identity(path)
    if own is None:
        return None
    identity, page_size = own
    wal_page_size, pages = read
    if wal_page_size != page_size:
        return f"its pages are {wal_page_size} bytes, the database's {page_size}"
    if not any(identity in page for page in pages):
        return f"none of its {len(pages)} page(s) was written by this database"
    return None
