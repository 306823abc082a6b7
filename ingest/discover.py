"""Discovery: which files under the given paths are candidates for indexing.

Recursive; skips hidden files and folders, editor/office temporary and lock files.
Every path is resolved before it is read: a file or folder (symlinked or not) whose real
location is outside the scanned root, or inside the service's data directory, is refused
(``outside_root``) and never opened. Symlinks that stay inside the root are followed
without loops (each real directory is visited once).
"""

from __future__ import annotations

import fnmatch
import os
import stat
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
    refused: str | None = None  # why it is never read (reported as ``outside_root``)

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


def is_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (already resolved) is ``folder`` or lies below it."""
    return path == folder or path.is_relative_to(folder)


STAGING_AREAS = ("uploads", "eval")
"""Data-dir folders whose subfolders hold documents Inhouse wrote itself (uploads, eval sets)."""


@dataclass(frozen=True, slots=True)
class Confinement:
    """Where discovered files may really live: inside ``root``, never in the data dir.

    The data dir (index, manifest, keys, audit and reasoning logs) is refused even when it
    lies inside a root, except for a root inside one of the areas where Inhouse itself
    stages documents (``<data dir>/uploads/<collection>``, ``<data dir>/eval/<set>``), where
    the root check alone confines.
    """

    root: Path  # resolved
    data_dir: Path | None = None  # resolved

    @classmethod
    def of(cls, root: Path, data_dir: Path | None) -> Confinement:
        data = data_dir.expanduser().resolve() if data_dir is not None else None
        if data is not None and any(
            is_inside(root, data / area) and root != data / area for area in STAGING_AREAS
        ):
            data = None
        return cls(root=root, data_dir=data)

    def refusal(self, real: Path) -> str | None:
        """Why the resolved path ``real`` may not be read, or None when it may."""
        if self.data_dir is not None and is_inside(real, self.data_dir):
            return "it is inside the service's data directory"
        if not is_inside(real, self.root):
            return "it leads outside the scanned folder"
        return None


def discover(
    path: Path,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    data_dir: Path | None = None,
) -> Iterator[DiscoveredFile]:
    """Yield the indexable files under ``path`` (a folder or one file), sorted per folder.

    ``include``/``exclude`` are glob patterns matched against the relative POSIX path
    (``**/*.pdf``-style via fnmatch, where ``*`` also crosses ``/``) and the file name.
    Every path is resolved: a file or folder whose real location is outside the scanned
    root or inside ``data_dir`` is yielded with ``refused`` set (reason ``outside_root``)
    and never read; symlinks that stay inside are followed, each real folder once.
    """
    resolved = path.expanduser().resolve()
    if not resolved.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    root = scan_root(resolved)
    confine = Confinement.of(root, data_dir)
    if resolved.is_file():
        found = _file_entry(root, resolved, resolved, confine)
        if found and _selected(found.relative, include, exclude):
            yield found
        return
    if confine.refusal(root) is not None:  # the root is (inside) the data dir
        yield _refused(root, ".", root, confine)
        return
    seen_dirs: set[tuple[int, int]] = set()
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        real_dir, prefix = stack.pop()
        try:
            st = real_dir.stat()
            names = sorted(os.listdir(real_dir))
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:  # a symlink loop or a second link to the same folder
            continue
        seen_dirs.add(key)
        subdirs: list[tuple[Path, str]] = []
        for name in names:
            if is_skipped_name(name):
                continue
            relative = prefix + name
            entry = real_dir / name
            real = Path(os.path.realpath(entry))
            if not real.exists():  # dangling symlink
                continue
            if real.is_dir():
                if confine.refusal(real) is not None:
                    found = _refused(root, relative, real, confine)
                    if _selected(relative, include, exclude):
                        yield found
                    continue
                subdirs.append((real, relative + "/"))
                continue
            found = _file_entry(root, relative, real, confine)
            if found and _selected(found.relative, include, exclude):
                yield found
        stack.extend(reversed(subdirs))  # depth-first, folders in name order


def still_inside(file: DiscoveredFile, data_dir: Path | None = None) -> str | None:
    """Re-check at read time (a path may be swapped for a symlink after discovery).

    Returns why ``file`` may no longer be read, or None.
    """
    try:
        real = Path(os.path.realpath(file.path, strict=True))
    except OSError as exc:
        return f"cannot resolve: {exc.strerror or exc}"
    return Confinement.of(file.root, data_dir).refusal(real)


def _file_entry(
    root: Path, relative: str | Path, real: Path, confine: Confinement
) -> DiscoveredFile | None:
    if isinstance(relative, Path):
        relative = relative.relative_to(root).as_posix()
    if confine.refusal(real) is not None:
        return _refused(root, relative, real, confine)
    try:
        st = real.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return DiscoveredFile(root=root, relative=relative, size=st.st_size, mtime_ns=st.st_mtime_ns)


def _refused(root: Path, relative: str, real: Path, confine: Confinement) -> DiscoveredFile:
    """An entry that is reported (``outside_root``) but never read; its own link's times."""
    try:
        mtime_ns = (root / relative).lstat().st_mtime_ns
    except OSError:
        mtime_ns = 0
    reason = confine.refusal(real) or "it leads outside the scanned folder"
    return DiscoveredFile(
        root=root, relative=relative, size=0, mtime_ns=mtime_ns, refused=f"not read: {reason}"
    )


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
