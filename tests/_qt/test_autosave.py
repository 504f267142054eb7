"""Autosave: changed masks reach the recovery folder in the background, and a new viewer offers them back."""

from __future__ import annotations

import time

import numpy as np
import pytest
from _qt_helpers import WAIT_MS, disks, run_segment

import napari_unet._qt.autosave as autosave
from napari_unet import recovery
from napari_unet._qt.session import session_for
from napari_unet.recovery import image_key, newest_version, versions

TICK_S = 0.3  # the autosave interval in these tests (60 s in use)


@pytest.fixture(autouse=True)
def recovery_folder(tmp_path, monkeypatch):
    """A recovery folder of the test's own, and a short interval (set before any viewer exists)."""
    root = tmp_path / "recovery"
    monkeypatch.setenv(recovery.ENV_VAR, str(root))
    monkeypatch.setattr(autosave, "AUTOSAVE_S", TICK_S)
    return root


def files(root) -> list:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


def img_key(image=None) -> str:
    return image_key(disks() if image is None else image, name="img")


def wait_versions(qtbot, n: int, key: str | None = None, layer: str | None = "img masks") -> None:
    qtbot.waitUntil(lambda: len(versions(key or img_key(), layer)) >= n, timeout=WAIT_MS)


def offers(notifications) -> list:
    return [n for n in notifications if [text for text, _ in getattr(n, "actions", ())] == [autosave.RESTORE]]


def test_segmented_and_edited_masks_are_saved_after_a_tick_and_only_after_changes(qtbot, viewer_widget):
    viewer, widget = viewer_widget  # Segment, opened from the Plugins menu
    viewer.add_image(disks(), name="img")
    run_segment(qtbot, widget)
    wait_versions(qtbot, 1)  # the new masks layer, once
    root = recovery.recovery_dir()
    before = files(root)
    qtbot.wait(int(4 * TICK_S * 1000))  # several ticks with nothing changed
    assert files(root) == before
    masks = viewer.layers["img masks"]
    masks.brush_size = 3
    masks.paint((60, 100), 9)  # a user's correction with the brush
    wait_versions(qtbot, 2)
    newest = newest_version(img_key(), "img masks")
    np.testing.assert_array_equal(newest.load(), masks.data)
    assert newest.load()[60, 100] == 9
    masks.undo()  # undo emits no paint event; it is a change all the same
    wait_versions(qtbot, 3)
    assert newest_version(img_key(), "img masks").load()[60, 100] == 0


def test_only_layers_we_made_or_the_user_edited_are_saved(qtbot, viewer_widget):
    viewer, _ = viewer_widget
    viewer.add_image(disks(), name="img")
    notes = viewer.add_labels(np.zeros((96, 128), np.int32), name="notes")
    viewer.add_labels(np.ones((96, 128), np.int32), name="loaded")
    qtbot.wait(int(3 * TICK_S * 1000))
    assert files(recovery.recovery_dir()) == []  # neither ours nor edited
    notes.paint((10, 10), 4)
    wait_versions(qtbot, 1, layer="notes")  # saved under the image of its shape
    assert {v.layer for v in versions(img_key())} == {"notes"}


def test_a_new_viewer_offers_the_masks_saved_when_the_last_one_closed(
    qtbot, make_napari_viewer, model_file, notifications, monkeypatch,
):
    monkeypatch.setattr(autosave, "AUTOSAVE_S", 3600)  # no tick: closing saves
    first = make_napari_viewer()
    session_for(first).load_model(model_file)
    _, widget = first.window.add_plugin_dock_widget("napari-unet", "Segment")
    first.add_image(disks(), name="img")
    run_segment(qtbot, widget)
    masks = first.layers["img masks"]
    masks.paint((60, 100), 9)
    edited = np.array(masks.data)
    first.window.close()  # the user closes the window without saving the masks
    assert newest_version(img_key(), "img masks") is not None
    np.testing.assert_array_equal(newest_version(img_key(), "img masks").load(), edited)

    second = make_napari_viewer()
    second.add_image(disks(), name="img")  # the same image, opened again
    second.window.add_plugin_dock_widget("napari-unet", "Segment")
    qtbot.waitUntil(lambda: bool(offers(notifications)), timeout=WAIT_MS)
    [offer] = offers(notifications)
    assert "img masks" in offer.message
    _, restore = offer.actions[0]
    restore(None)  # what the notification's button does
    qtbot.waitUntil(lambda: "img masks" in second.layers, timeout=WAIT_MS)
    np.testing.assert_array_equal(second.layers["img masks"].data, edited)
    qtbot.wait(int(3 * TICK_S * 1000))
    assert len(versions(img_key(), "img masks")) == 1  # the restored copy is not saved again


def test_no_offer_when_the_masks_are_in_the_viewer_and_restoring_over_them_is_undoable(
    qtbot, viewer_widget, notifications,
):
    key = img_key()
    saved = np.zeros((96, 128), np.int32)
    saved[10:20, 10:20] = 5
    version = recovery.save_version(saved, key, "img masks", image="img")
    viewer, _ = viewer_widget
    current = np.zeros((96, 128), np.int32)
    current[50:60, 50:60] = 2
    viewer.add_labels(current, name="img masks")  # e.g. the user opened their saved masks first
    image = viewer.add_image(disks(), name="img")
    qtbot.wait(500)
    assert offers(notifications) == []
    session_for(viewer).autosaver.restore(image, version)
    masks = viewer.layers["img masks"]
    qtbot.waitUntil(lambda: masks.data[15, 15] == 5, timeout=WAIT_MS)
    assert len(viewer.layers) == 2  # replaced in place
    masks.undo()
    np.testing.assert_array_equal(masks.data, current)


def test_a_deleted_or_closed_layer_keeps_its_last_changes(qtbot, viewer_widget, monkeypatch):
    monkeypatch.setattr(autosave, "AUTOSAVE_S", 3600)  # no tick
    viewer, _ = viewer_widget
    viewer.add_image(disks(), name="img")
    masks = viewer.add_labels(np.zeros((96, 128), np.int32), name="img masks")
    masks.paint((40, 40), 3)
    edited = np.array(masks.data)
    viewer.close()  # scripts' way: the layers go first, then the window
    wait_versions(qtbot, 1)
    np.testing.assert_array_equal(newest_version(img_key(), "img masks").load(), edited)


def test_versions_per_layer_are_bounded(qtbot, viewer_widget):
    viewer, _ = viewer_widget
    viewer.add_image(disks(), name="img")
    masks = viewer.add_labels(np.zeros((96, 128), np.int32), name="img masks")
    wait_versions(qtbot, 1)
    for i in range(recovery.KEEP_VERSIONS + 2):
        masks.paint((5 + 10 * i, 5), i + 1)
        qtbot.waitUntil(lambda i=i: newest_version(img_key(), "img masks").load()[5 + 10 * i, 5] == i + 1,
                        timeout=WAIT_MS)
    # the worker prunes right after the newest version's file appears: wait for it, not a moment
    qtbot.waitUntil(lambda: len(versions(img_key(), "img masks")) <= recovery.KEEP_VERSIONS, timeout=WAIT_MS)
    kept = versions(img_key(), "img masks")
    assert len(kept) == recovery.KEEP_VERSIONS
    np.testing.assert_array_equal(kept[0].load(), masks.data)


def test_a_2048_layer_is_saved_off_the_ui_thread(qtbot, viewer_widget, monkeypatch):
    monkeypatch.setattr(autosave, "AUTOSAVE_S", 3600)
    viewer, _ = viewer_widget
    image = np.random.default_rng(0).random((2048, 2048)).astype(np.float32)
    viewer.add_image(image, name="img")
    labels = np.zeros((2048, 2048), np.int32)
    labels[::64, ::64] = np.arange(1, 32 * 32 + 1).reshape(32, 32)
    viewer.add_labels(labels, name="img masks")
    autosaver = session_for(viewer).autosaver
    seen = []
    autosaver.saved.connect(lambda version: seen.append((time.perf_counter(), version)))
    start = time.perf_counter()
    assert autosaver.save_changed() == 1
    on_ui_thread = time.perf_counter() - start
    assert not seen  # written later, by a worker
    qtbot.waitUntil(lambda: bool(seen), timeout=WAIT_MS)
    total = seen[0][0] - start
    print(f"2048² save: {1000 * on_ui_thread:.0f} ms on the UI thread, {1000 * total:.0f} ms until written")
    assert on_ui_thread < 0.25  # the copy only: compression and writing are the worker's
    np.testing.assert_array_equal(seen[0][1].load(), labels)
    assert autosaver.save_changed() == 0  # nothing changed since
