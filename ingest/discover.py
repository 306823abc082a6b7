"""Discovery: which files under the given paths are candidates for indexing.

Recursive; skips hidden files and folders, editor/office temporary and lock files;
follows directory symlinks but never loops (each real directory is visited once).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SKIPPED_NAME_PATTERNS: tuple[str, ...] = (
    ".*",  # hidden, incl. .~lock.x.odt#, .DS_Store, .#emacs-lock
    "~$*",  # MS Office owner files
    "~*.tmp",
    "*.tmp",
    "*.temp",
    "*.swp",
    "*.swx",
    "*~",
    "*.part",
    "*.crdownload",
    "Thumbs.db",
    "desktop.ini",
)


@dataclass(frozen=True, slots=True)
class DiscoveredFile:
    """A candidate file: the scanned root it was found under and its path relative to it."""

    root: Path
    relative: str  # POSIX-style path relative to root
    size: int
    mtime_ns: int

    @property
    def path(self) -> Path:
        return self.root / self.relative


def is_skipped_name(name: str) -> bool:
    """Hidden, temporary or lock file names that are never indexed."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in SKIPPED_NAME_PATTERNS)


def scan_root(path: Path) -> Path:
    """The root a path is scanned under: the folder itself, or a file's parent folder."""
    resolved = path.expanduser().resolve()
    return resolved if resolved.is_dir() else resolved.parent


def discover(
    path: Path,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> Iterator[DiscoveredFile]:
    """Yield the indexable files under ``path`` (a folder or one file), sorted per folder.

    ``include``/``exclude`` are glob patterns matched against the relative POSIX path
    (``**/*.pdf``-style via fnmatch, where ``*`` also crosses ``/``) and the file name.
    """
    resolved = path.expanduser().resolve()
    if not resolved.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    root = scan_root(resolved)
    if resolved.is_file():
        found = _stat_file(root, resolved)
        if found and _selected(found.relative, include, exclude):
            yield found
        return
    seen_dirs: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        current = Path(dirpath)
        try:
            st = current.stat()
        except OSError:
            dirnames[:] = []
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:  # a symlink loop or a second link to the same folder
            dirnames[:] = []
            continue
        seen_dirs.add(key)
        dirnames[:] = sorted(d for d in dirnames if not is_skipped_name(d))
        for name in sorted(filenames):
            if is_skipped_name(name):
                continue
            found = _stat_file(root, current / name)
            if found and _selected(found.relative, include, exclude):
                yield found


def _stat_file(root: Path, path: Path) -> DiscoveredFile | None:
    try:
        st = path.stat()  # follows a file symlink; a dangling one is skipped
    except OSError:
        return None
    if not path.is_file():
        return None
    relative = path.relative_to(root).as_posix()
    return DiscoveredFile(root=root, relative=relative, size=st.st_size, mtime_ns=st.st_mtime_ns)


def _selected(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    name = relative.rsplit("/", 1)[-1]

    def matches(patterns: Sequence[str]) -> bool:
        return any(
            fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) or _globstar(relative, p)
            for p in patterns
        )

    if include and not matches(include):
        return False
    return not (exclude and matches(exclude))


def _globstar(relative: str, pattern: str) -> bool:
    """Let ``**/x`` also match ``x`` at the root."""
    return pattern.startswith("**/") and fnmatch.fnmatch(relative, pattern[3:])
