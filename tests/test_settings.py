"""Remembered options: kept per section, written atomically, a broken file never in the way."""

import json

from napari_unet.settings import load_settings, reset_settings, save_settings, settings_path


def test_sections_are_kept_apart_and_merged():
    save_settings("segment", {"zoom": "2×", "tile size": 256})
    save_settings("segment", {"zoom": "auto"})
    save_settings("finetune", {"budget": 60})
    assert load_settings("segment") == {"zoom": "auto", "tile size": 256}
    assert load_settings("finetune") == {"budget": 60}
    assert load_settings("click") == {}


def test_reset_forgets_one_section_or_all():
    save_settings("segment", {"zoom": "2×"})
    save_settings("finetune", {"budget": 60})
    reset_settings("segment")
    assert load_settings("segment") == {} and load_settings("finetune") == {"budget": 60}
    reset_settings()
    assert load_settings("finetune") == {}


def test_a_broken_file_means_defaults_and_is_kept_aside():
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"segment": {"zoom": "2×",')  # cut short, e.g. by a full disk before atomic writes
    assert load_settings("segment") == {}
    assert path.with_name("settings.json.broken").read_text().startswith('{"segment"')
    save_settings("segment", {"zoom": "auto"})
    assert json.loads(path.read_text()) == {"segment": {"zoom": "auto"}}
    assert not list(path.parent.glob("*.tmp*"))  # nothing half-written left beside it
