"""Recovery copies of label images: what autosave writes, and what a restore reads back.

Each copy (a *version*) is one compressed ``.npz`` file holding the labels and a small
JSON record (image key, layer name, time, shape, digest). Files are written with
:func:`napari_unet.io.atomic_path`, so a crash or a kill never leaves a half-written
version behind. The folder is laid out as::

    <recovery_dir>/<image key>/<layer id>-<time in ns>.npz

The image key names the image the labels belong to (:func:`image_key`); the layer id
is a hash of the layer's name. Only the newest :data:`KEEP_VERSIONS` versions of a
layer are kept, and the whole folder stays under :data:`MAX_TOTAL_BYTES`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import zipfile
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_unet.io import atomic_path

ENV_VAR = "NAPARI_UNET_RECOVERY_DIR"  # overrides the folder (tests, shared machines)
KEEP_VERSIONS = 5  # per image and layer: older versions are deleted after each save
MAX_TOTAL_BYTES = 2 * 1024**3  # the whole folder; beyond it the oldest versions go first
SAMPLE_PIXELS = 65_536  # pixels hashed for the key of an image that has no file
COMPRESS_LEVEL = 1  # zlib: a 2048² int32 layer in ~75 ms; labels compress well even so
STALE_TEMP_S = 3600.0  # a temporary file this old is left over from a killed save
SUFFIX = ".npz"
FORMAT = 1  # of the JSON record; bumped if its fields change meaning


@dataclass(frozen=True)
class Version:
    """One saved copy of a layer's labels (the JSON record stored with them)."""

    path: Path
    image_key: str
    layer: str  # the Labels layer's name when it was saved
    time: float  # when it was saved, in seconds since the epoch
    shape: tuple[int, ...]
    dtype: str
    digest: str  # of the labels (see labels_digest): equal digests, equal labels
    image: str = ""  # the image's file or name when saved, for people reading the folder
    scale: tuple[float, ...] | None = None  # the layer's scale and translate, to restore it in place
    translate: tuple[float, ...] | None = None

    def load(self) -> np.ndarray:
        """The saved labels.

        Raises
        ------
        ValueError
            The file is gone or cannot be read.
        """
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                return npz["labels"]
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{self.path}: recovery file cannot be read ({exc})") from exc


def recovery_dir() -> Path:
    """The per-user folder for recovery files (``$NAPARI_UNET_RECOVERY_DIR`` if set).

    By default ``<user data dir>/napari-unet/recovery``: ``~/.local/share`` on Linux,
    ``~/Library/Application Support`` on macOS, ``%LOCALAPPDATA%`` on Windows.
    """
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("napari-unet", appauthor=False)) / "recovery"


def image_key(
    data: object = None, *, source: str | os.PathLike | None = None, name: str = "",
    shape: tuple[int, ...] | None = None,
) -> str:
    """A stable name for an image, the same each time the same image is opened.

    Parameters
    ----------
    data : array-like, optional
        The image's pixels (numpy, dask, zarr: only a strided sample is read).
        Ignored when ``source`` is given.
    source : path, optional
        The file the image came from: the key is its absolute path alone.
    name : str
        The image's name; with ``data``, part of the key when there is no file.
    shape : tuple of int, optional
        Used with ``name`` when there are no pixels (defaults to ``data``'s shape).

    Returns
    -------
    str
        24 hex digits.
    """
    digest = hashlib.sha1(usedforsecurity=False)
    if source is not None:
        digest.update(b"file\0" + os.path.realpath(os.fspath(source)).encode())
    else:
        shape = tuple(np.shape(data)) if shape is None and data is not None else tuple(shape or ())
        dtype = str(getattr(data, "dtype", "")) if data is not None else ""
        digest.update(json.dumps(["image", name, list(shape), dtype]).encode())
        if data is not None:
            digest.update(_sample(data))
    return digest.hexdigest()[:24]


def labels_digest(labels: np.ndarray) -> str:
    """A digest of ``labels`` (values, shape and dtype): equal digests mean equal labels."""
    labels = np.ascontiguousarray(labels)
    digest = hashlib.sha1(f"{labels.dtype.str}{labels.shape}".encode(), usedforsecurity=False)
    digest.update(labels.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def save_version(
    labels: np.ndarray, image_key: str, layer: str, *, image: str = "",
    scale: Iterable[float] | None = None, translate: Iterable[float] | None = None,
    keep: int = KEEP_VERSIONS, max_bytes: int = MAX_TOTAL_BYTES,
    protect: Collection[Path] = (), root: Path | None = None,
) -> Version | None:
    """Save ``labels`` as the newest version of ``layer`` of the image ``image_key``.

    Nothing is written when the newest version already holds these labels. After a
    write, the layer keeps its ``keep`` newest versions and the folder is brought under
    ``max_bytes`` (see :func:`prune` and :func:`limit_size`).

    Parameters
    ----------
    labels : numpy.ndarray
        The labels (any integer or bool dtype; saved as they are).
    image_key : str
        See :func:`image_key`.
    layer : str
        The Labels layer's name.
    image : str
        The image's file or name, recorded for people reading the folder.
    scale, translate : sequence of float, optional
        The layer's, recorded so a restore puts the labels where they were.
    keep, max_bytes : int
        How many versions of this layer to keep, and the folder's size limit.
    protect : collection of Path
        Versions pruning must not delete (e.g. one offered for restore).
    root : Path, optional
        The recovery folder (default :func:`recovery_dir`).

    Returns
    -------
    Version or None
        The version written, or None when nothing was written.
    """
    labels = np.asarray(labels)
    digest = labels_digest(labels)
    newest = newest_version(image_key, layer, root=root)
    if newest is not None and newest.digest == digest:
        return None
    folder = _image_folder(image_key, root)
    stamp = time.time_ns()
    if newest is not None:  # strictly newer than the last, even if the clock stepped back
        stamp = max(stamp, _stamp(newest.path) + 1)
    path = folder / f"{_layer_id(layer)}-{stamp:020d}{SUFFIX}"
    version = Version(
        path, image_key, layer, stamp / 1e9, tuple(labels.shape), labels.dtype.str, digest, image,
        _floats(scale), _floats(translate),
    )
    record = {"format": FORMAT, **{k: v for k, v in vars(version).items() if k != "path"}}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as npz:
            with npz.open("labels.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, labels, allow_pickle=False)
            with npz.open("meta.npy", "w") as member:
                np.lib.format.write_array(member, np.array(json.dumps(record)), allow_pickle=False)
    protect = {*map(Path, protect), path}
    prune(image_key, layer, keep, protect=protect, root=root)
    limit_size(max_bytes, protect=protect, root=root)
    return version


def versions(image_key: str, layer: str | None = None, *, root: Path | None = None) -> list[Version]:
    """The readable versions of an image (of one layer, if given), newest first."""
    return [v for v in map(_read, _files(image_key, layer, root)) if v is not None]


def newest_version(image_key: str, layer: str | None = None, *, root: Path | None = None) -> Version | None:
    """The newest readable version of an image (of one layer, if given), or None."""
    return next((v for v in map(_read, _files(image_key, layer, root)) if v is not None), None)


def newest_versions(image_key: str, *, root: Path | None = None) -> list[Version]:
    """The newest readable version of each layer of an image, newest first."""
    found: dict[str, Version] = {}
    for version in versions(image_key, root=root):
        found.setdefault(version.layer, version)
    return list(found.values())


def prune(
    image_key: str, layer: str, keep: int = KEEP_VERSIONS, *,
    protect: Collection[Path] = (), root: Path | None = None,
) -> list[Path]:
    """Delete all but the ``keep`` newest versions of a layer (never those in ``protect``),
    and temporary files left over from killed saves. Returns the files deleted.
    """
    doomed = [p for p in _files(image_key, layer, root)[max(keep, 0):] if p not in set(protect)]
    folder = _image_folder(image_key, root)
    if folder.is_dir():
        cutoff = time.time() - STALE_TEMP_S
        doomed += [p for p in folder.glob(".*.tmp") if _mtime(p) < cutoff]
    return _delete(doomed)


def limit_size(
    max_bytes: int = MAX_TOTAL_BYTES, *, protect: Collection[Path] = (), root: Path | None = None,
) -> list[Path]:
    """Delete versions, oldest first, until the recovery folder holds at most ``max_bytes``.

    The newest version of each layer goes only after every older one, and versions in
    ``protect`` never. Returns the files deleted.
    """
    files = [p for p in _root(root).glob(f"*/*{SUFFIX}") if _parse(p) is not None]
    sizes = {p: _size(p) for p in files}
    excess = sum(sizes.values()) - max_bytes
    if excess <= 0:
        return []
    newest: dict[tuple[str, str], Path] = {}
    for path in sorted(files, key=_stamp):
        newest[(path.parent.name, _parse(path)[0])] = path
    latest = set(newest.values())
    order = sorted((p for p in files if p not in set(protect)), key=lambda p: (p in latest, _stamp(p)))
    doomed = []
    for path in order:
        if excess <= 0:
            break
        doomed.append(path)
        excess -= sizes[path]
    return _delete(doomed)


def clear(*, root: Path | None = None) -> int:
    """Delete every recovery file (and the emptied folders); returns how many files went."""
    folder = _root(root)
    files = [p for p in folder.glob(f"*/*{SUFFIX}") if _parse(p) is not None]
    files += list(folder.glob("*/.*.tmp"))
    removed = _delete(files)
    for sub in folder.glob("*"):
        if sub.is_dir():
            try:
                sub.rmdir()
            except OSError:  # holds something that is not ours
                pass
    return len(removed)


# -- the folder ---------------------------------------------------------------------------
def _root(root: Path | None) -> Path:
    return Path(root) if root is not None else recovery_dir()


def _image_folder(image_key: str, root: Path | None) -> Path:
    if not image_key or not all(c.isalnum() or c in "-_" for c in image_key):
        raise ValueError(f"image key {image_key!r} is not a key from image_key()")
    return _root(root) / image_key


def _layer_id(layer: str) -> str:
    return hashlib.sha1(layer.encode(), usedforsecurity=False).hexdigest()[:12]


def _parse(path: Path) -> tuple[str, int] | None:
    """(layer id, time in ns) from a version's file name, or None if it is not one."""
    layer_id, _, stamp = path.stem.partition("-")
    if path.suffix != SUFFIX or len(layer_id) != 12 or not stamp.isdigit():
        return None
    return layer_id, int(stamp)


def _stamp(path: Path) -> int:
    return _parse(path)[1]


def _files(image_key: str, layer: str | None, root: Path | None) -> list[Path]:
    """Version files of an image (one layer's, if given), newest first, by their names."""
    folder = _image_folder(image_key, root)
    pattern = f"{_layer_id(layer)}-*{SUFFIX}" if layer is not None else f"*{SUFFIX}"
    found = [p for p in folder.glob(pattern) if _parse(p) is not None] if folder.is_dir() else []
    return sorted(found, key=_stamp, reverse=True)


def _read(path: Path) -> Version | None:
    """The version stored in ``path``, or None if it is unreadable or not one of ours."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            record = json.loads(str(npz["meta"]))
        if record.pop("format", None) != FORMAT:
            return None
        record["shape"] = tuple(record["shape"])
        record["scale"], record["translate"] = _floats(record.get("scale")), _floats(record.get("translate"))
        return Version(path=path, **record)
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile):
        return None


def _delete(paths: Iterable[Path]) -> list[Path]:
    removed = []
    for path in paths:
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:  # another napari deleted it first
            pass
    return removed


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")


def _floats(values: Iterable[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


def _sample(data: object) -> bytes:
    """At most about :data:`SAMPLE_PIXELS` pixels of ``data``, evenly strided along each axis."""
    shape = np.shape(data)
    if not shape:
        return np.ascontiguousarray(np.asarray(data)).tobytes()
    per_axis = max(1, int(SAMPLE_PIXELS ** (1 / len(shape))))
    steps = tuple(slice(None, None, max(1, -(-size // per_axis))) for size in shape)
    return np.ascontiguousarray(np.asarray(data[steps])).tobytes()
