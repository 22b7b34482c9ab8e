"""Static files of the dashboard, served from the package (nothing from a CDN: it must work on an
air-gapped network): the page script and style sheet in ``static/``, and plotly.js from the installed
plotly package. Each is read once, gzipped once, and served with a content-hash ETag; URLs carry the
hash (``?v=``) so browsers may cache them for a year.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).with_name("static")
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
PLOTLY = "plotly.min.js"


@dataclass(frozen=True)
class Asset:
    body: bytes
    gz: bytes
    etag: str
    media_type: str

    @property
    def version(self) -> str:
        return self.etag.strip('"')[:16]


def _plotly_path() -> Path:
    import plotly

    return Path(plotly.__file__).with_name("package_data") / PLOTLY


def _path(name: str) -> Path | None:
    if name == PLOTLY:
        return _plotly_path()
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    p = STATIC_DIR / name
    return p if p.suffix in MEDIA_TYPES and p.is_file() else None


class Assets:
    """Loads each file on first use and keeps it (they are immutable package data)."""

    def __init__(self) -> None:
        self._cache: dict[str, Asset] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Asset | None:
        asset = self._cache.get(name)
        if asset is not None:
            return asset
        path = _path(name)
        if path is None or not path.is_file():
            return None
        with self._lock:
            if name not in self._cache:
                body = path.read_bytes()
                self._cache[name] = Asset(
                    body=body,
                    gz=gzip.compress(body, compresslevel=6, mtime=0),
                    etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
                    media_type=MEDIA_TYPES[path.suffix],
                )
            return self._cache[name]

    def url(self, name: str) -> str:
        asset = self.get(name)
        return f"/dashboard/static/{name}" + (f"?v={asset.version}" if asset else "")
