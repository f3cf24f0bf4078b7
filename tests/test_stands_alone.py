"""The project stands alone: no file cites a document outside the repository (the notes it was built from are
not shipped; docs/provider-wire.md says what the code relies on, in the project's own words)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Spelled in two halves so that this file does not match itself.
OUTSIDE = ("shared" + "/reference", "/work" + "/shared")


def _tracked_and_new_files() -> list[Path]:
    """Every file git tracks or would add (``.gitignore`` honoured: no ``.venv``, caches or build output)."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    return [ROOT / name for name in listing.decode().split("\0") if name]


def test_no_file_cites_a_document_outside_the_repository() -> None:
    files = _tracked_and_new_files()
    assert len(files) > 100
    citing = []
    for path in files:
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        citing += [f"{path.relative_to(ROOT)}: {needle}" for needle in OUTSIDE if needle in text]
    assert citing == []


def test_the_wire_notes_are_in_the_repository() -> None:
    notes = (ROOT / "docs" / "provider-wire.md").read_text()
    for section in ("## 1. Anthropic Messages", "## 2. OpenAI Chat Completions", "## 4. Translation", "## 5. Prices"):
        assert section in notes
