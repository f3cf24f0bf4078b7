"""No document repeats a heading: a repeated one makes two sections with one anchor, and a reader a lost place."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADING = re.compile(r"^(#{1,6}) +(.+?) *#*$")
FENCE = re.compile(r"^(```|~~~)")


def headings(text: str) -> list[str]:
    """The Markdown headings of a document, as written ("## Layout"), code blocks left out."""
    found: list[str] = []
    in_code = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code and (match := HEADING.match(line)):
            found.append(f"{match[1]} {match[2]}")
    return found


def test_headings_reads_markdown_headings_outside_code() -> None:
    text = "# Title\n\n## Layout\ntext\n```bash\n# a comment, not a heading\n```\n## Layout ##\n#not-a-heading\n"
    assert headings(text) == ["# Title", "## Layout", "## Layout"]


def test_no_document_repeats_a_heading() -> None:
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(documents) >= 10
    repeated = {
        str(path.relative_to(ROOT)): sorted(name for name, n in Counter(headings(path.read_text())).items() if n > 1)
        for path in documents
    }
    assert {path: names for path, names in repeated.items() if names} == {}
