"""The browser test's set-up: a missing Chromium skips it locally and fails it on CI."""

from __future__ import annotations

import pytest
from browser_helpers import find_chromium


@pytest.fixture
def no_chromium(monkeypatch, tmp_path):
    """Pretend no browser exists: $CHROMIUM points nowhere, nothing on PATH or in /usr/bin."""
    import browser_helpers

    monkeypatch.setenv("CHROMIUM", str(tmp_path / "missing-chromium"))
    monkeypatch.setenv("PATH", str(tmp_path))
    real_is_file = browser_helpers.Path.is_file
    monkeypatch.setattr(
        browser_helpers.Path, "is_file", lambda self: str(self) != "/usr/bin/chromium" and real_is_file(self)
    )


def test_missing_chromium_skips_outside_ci(no_chromium, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium found"):
        find_chromium()


def test_missing_chromium_fails_on_ci(no_chromium, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no Chromium found"):
        find_chromium()


def test_chromium_from_the_environment_variable_wins(monkeypatch, tmp_path):
    fake = tmp_path / "my-chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CHROMIUM", str(fake))
    assert find_chromium() == str(fake)
