"""Recovery copies of labels: versions, pruning, the size limit, atomic files, stable image keys."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from napari_unet import recovery
from napari_unet.recovery import (
    image_key,
    labels_digest,
    limit_size,
    newest_version,
    newest_versions,
    prune,
    recovery_dir,
    save_version,
    versions,
)


@pytest.fixture(autouse=True)
def folder(tmp_path, monkeypatch):
    root = tmp_path / "recovery"
    monkeypatch.setenv(recovery.ENV_VAR, str(root))
    return root


def labels(value: int = 1, shape=(32, 40)) -> np.ndarray:
    out = np.zeros(shape, np.int32)
    out[4:12, 5 : 5 + value] = value
    return out


def test_the_folder_is_the_env_override_else_per_user(folder, monkeypatch):
    assert recovery_dir() == folder
    monkeypatch.delenv(recovery.ENV_VAR)
    default = recovery_dir()
    assert default.name == "recovery" and "napari-unet" in default.parts


def test_a_version_round_trips_with_its_record(folder):
    data = labels(3)
    version = save_version(data, "k1", "img masks", image="img", scale=(2, 1), translate=(0, 5))
    assert version is not None and version.path.parent == folder / "k1"
    assert version.path.suffix == ".npz" and version.shape == (32, 40) and version.dtype == data.dtype.str
    assert abs(version.time - time.time()) < 60
    read = newest_version("k1", "img masks")
    assert read == version
    assert read.scale == (2.0, 1.0) and read.translate == (0.0, 5.0) and read.image == "img"
    np.testing.assert_array_equal(read.load(), data)
    assert read.load().dtype == np.int32


def test_nothing_is_written_when_the_labels_did_not_change(folder):
    first = save_version(labels(1), "k", "m")
    assert save_version(labels(1), "k", "m") is None
    assert [v.path for v in versions("k")] == [first.path]
    second = save_version(labels(2), "k", "m")
    assert second is not None and second.time > first.time
    assert save_version(labels(1), "k", "m") is not None  # back to the first labels: a change too


def test_versions_are_newest_first_and_pruned_to_the_last_n(folder):
    written = [save_version(labels(i), "k", "m", keep=3) for i in range(1, 7)]
    kept = versions("k", "m")
    assert [v.path for v in kept] == [w.path for w in written[::-1][:3]]
    assert len(list((folder / "k").iterdir())) == 3
    np.testing.assert_array_equal(newest_version("k").load(), labels(6))


def test_pruning_is_per_layer_and_spares_protected_versions(folder):
    other = save_version(labels(9), "k", "other")
    oldest = save_version(labels(1), "k", "m")
    for i in range(2, 8):
        save_version(labels(i), "k", "m", keep=2, protect=[oldest.path])
    names = {v.layer for v in versions("k")}
    assert names == {"m", "other"} and other.path.exists() and oldest.path.exists()
    assert len(versions("k", "m")) == 3  # two newest + the protected one
    assert [v.layer for v in newest_versions("k")] == ["m", "other"]
    assert prune("k", "m", keep=1) and len(versions("k", "m")) == 1


def test_the_size_limit_deletes_oldest_first_and_each_layers_newest_last(folder):
    rng = np.random.default_rng(0)

    def noisy():
        return rng.integers(0, 2**31 - 1, (64, 64), dtype=np.int32)  # incompressible: ~16 kB each

    a1 = save_version(noisy(), "a", "m")
    a2 = save_version(noisy(), "a", "m")
    b1 = save_version(noisy(), "b", "m")
    size = a1.path.stat().st_size
    removed = limit_size(int(2.5 * size))
    assert removed == [a1.path]  # the oldest that is not its layer's newest
    assert a2.path.exists() and b1.path.exists()
    removed = limit_size(int(1.5 * size), protect=[a2.path])
    assert removed == [b1.path]
    # a save keeps the folder under the limit it is given, never deleting what it wrote
    c1 = save_version(noisy(), "c", "m", max_bytes=int(1.5 * size))
    assert c1.path.exists() and not a2.path.exists()


def test_files_are_written_atomically_and_leftovers_cleared(folder, monkeypatch):
    save_version(labels(1), "k", "m")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as patched, pytest.raises(OSError, match="disk full"):
        patched.setattr(recovery.np.lib.format, "write_array", broken)  # fails mid-write
        save_version(labels(2), "k", "m")
    files = sorted(p.name for p in (folder / "k").iterdir())
    assert len(files) == 1 and not files[0].startswith(".")  # no temporary file, no half-written version
    np.testing.assert_array_equal(newest_version("k").load(), labels(1))
    # a temporary file left by a killed save goes at the next prune once it is stale
    stale = folder / "k" / ".x.npz.abc.tmp"
    stale.write_bytes(b"partial")
    old = time.time() - 2 * recovery.STALE_TEMP_S
    os.utime(stale, (old, old))
    save_version(labels(3), "k", "m")
    assert not stale.exists()


def test_unreadable_files_are_skipped_not_raised(folder):
    good = save_version(labels(1), "k", "m")
    bad = good.path.with_name(f"{good.path.stem[:12]}-{'9' * 20}.npz")
    bad.write_bytes(b"not a zip")
    assert newest_version("k", "m") == good
    assert versions("k") == [good]


def test_image_keys_are_stable_and_tell_images_apart(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.random((64, 80)).astype(np.float32)
    assert image_key(image, name="cells") == image_key(image.copy(), name="cells")
    assert image_key(image, name="cells") != image_key(image, name="other")
    changed = image.copy()
    changed[::1, ::1] += 1  # every pixel: the strided sample sees it
    assert image_key(changed, name="cells") != image_key(image, name="cells")
    assert image_key(image[:, :79], name="cells") != image_key(image, name="cells")
    # with a file, only its path counts (not the pixels, not the name)
    path = tmp_path / "a.tif"
    assert image_key(image, source=path, name="x") == image_key(None, source=str(path), name="y")
    assert image_key(image, source=path) != image_key(image, source=tmp_path / "b.tif")
    # a huge or 5D image reads only a sample
    big = np.broadcast_to(np.float32(1), (4, 3, 64, 512, 512))
    assert len(recovery._sample(big)) <= 4 * recovery.SAMPLE_PIXELS * 4
    assert image_key(big, name="v") == image_key(big, name="v")
    assert len(image_key(name="Labels", shape=(3, 4))) == 24


def test_digests_see_values_shape_and_dtype():
    data = labels(2)
    assert labels_digest(data) == labels_digest(data.copy())
    assert labels_digest(data) != labels_digest(data.astype(np.int64))
    assert labels_digest(data) != labels_digest(data.reshape(40, 32))
    assert labels_digest(np.asfortranarray(data)) == labels_digest(data)


def test_clear_removes_only_recovery_files(folder):
    save_version(labels(1), "k", "m")
    save_version(labels(1), "j", "m")
    mine = folder / "notes.txt"
    mine.write_text("keep me")
    assert recovery.clear() == 2
    assert mine.exists() and not (folder / "k").exists()


def test_bad_keys_are_refused():
    with pytest.raises(ValueError, match="image_key"):
        save_version(labels(1), "../escape", "m")
