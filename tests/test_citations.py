"""Citations point at documents this repository contains (issue 19).

Comments, docstrings, tests, benchmarks, notebooks and docs cite the project's reference as ``docs/reference.md §N``.
These tests fail on a citation of a planning document that lives outside the repository (users of the repository
do not have it), on a ``docs/reference.md §N`` whose section heading does not exist, and on a link into
docs/reference.md whose ``#anchor`` is not one of its headings.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference.md"
SCANNED_DIRS = ("reid_lab", "tests", "benchmarks", "scripts", "notebooks", "docs")
SCANNED_FILES = ("README.md", "Makefile", "pyproject.toml", "environment.yml")
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".txt", ".toml", ".yml", ".yaml", ".cfg", ".sh", ".rst", ".json", ".csv"}

# Documents outside the repository, by the names code used to cite them. The words are assembled from pieces so
# that this file does not match its own patterns.
_WORDS = {"spec": "SP" + "EC", "findings": "FIND" + "INGS", "users": "US" + "ERS", "style": "STY" + "LE"}
EXTERNAL = {
    "the external specification": re.compile(rf"\b{_WORDS['spec']}\b"),
    "the external findings notes": re.compile(rf"\b{_WORDS['findings']}(\.md)?\b"),
    "the external user-requests table": re.compile(rf"\b{_WORDS['users']}(\.md\b| P\d)"),
    "the external style guide": re.compile(rf"\b{_WORDS['style']}\.md\b"),
    "a folder outside the repository": re.compile(r"\.\./shared/"),
}

_NUM = r"\d+(?:\.\d+)*"
# "docs/reference.md §2.4", "§2.4–2.7", "§5.2 steps 2–3", "§9.6, §9.7", "§6 and §9.19", "[docs/reference.md §9](…)"
CITATION = re.compile(
    rf"docs/reference\.md\]?\s*((?:§\s?{_NUM}(?:\s*[–-]\s*{_NUM})?(?:\s+(?:steps?|items?)\s+\d+(?:\s*[–-]\s*\d+)?)?"
    rf"(?:\s*(?:,|/|and)\s*(?=§))?)+)")
SECTION = re.compile(rf"§\s?({_NUM})(?:\s*[–-]\s*({_NUM}))?")
ANCHOR = re.compile(r"docs/reference\.md#([\w-]+)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.M)


def _scanned_files() -> Iterator[Path]:
    for name in SCANNED_FILES:
        if (ROOT / name).is_file():
            yield ROOT / name
    for folder in SCANNED_DIRS:
        for path in sorted((ROOT / folder).rglob("*")):
            parts = path.relative_to(ROOT).parts
            if any(p.startswith(".") or p == "__pycache__" for p in parts) or not path.is_file():
                continue
            if path.suffix in TEXT_SUFFIXES:
                yield path


def _strings(obj) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, list):
        for x in obj:
            yield from _strings(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from _strings(x)


def _lines(path: Path) -> Iterator[tuple[str, str]]:
    """``(location, line)`` for every text line of ``path``; a notebook's cells are read from its JSON."""
    rel = path.relative_to(ROOT).as_posix()
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix != ".ipynb":
        for i, line in enumerate(text.splitlines(), 1):
            yield f"{rel}:{i}", line
        return
    nb = json.loads(text)
    for c, cell in enumerate(nb.get("cells", [])):
        for i, line in enumerate("".join(_strings(cell.get("source", ""))).splitlines(), 1):
            yield f"{rel} cell {c} line {i}", line
        for line in "".join(_strings(cell.get("outputs", []))).splitlines():
            yield f"{rel} cell {c} (output)", line


def _slug(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def _reference_headings() -> tuple[set[str], set[str]]:
    """Section numbers and anchors of docs/reference.md."""
    titles = HEADING.findall(REFERENCE.read_text(encoding="utf-8"))
    numbers = {m.group(1) for t in titles if (m := re.match(rf"({_NUM})\s", t))}
    return numbers, {_slug(t) for t in titles}


def _cited_sections(line: str) -> Iterator[str]:
    for m in CITATION.finditer(line):
        for s in SECTION.finditer(m.group(1)):
            yield s.group(1)
            if s.group(2):
                yield s.group(2)


def test_reference_exists_with_numbered_sections():
    numbers, _ = _reference_headings()
    assert {"1", "2.4", "9", "9.28", "11", "12"} <= numbers, sorted(numbers)


def test_no_citation_of_documents_outside_the_repository():
    bad = [f"{loc}: {what}: {line.strip()}"
           for path in _scanned_files() for loc, line in _lines(path)
           for what, pattern in EXTERNAL.items() if pattern.search(line)]
    assert not bad, ("cite docs/reference.md §N (or the paper) instead of documents users do not have:\n"
                     + "\n".join(bad))


def test_every_cited_reference_section_exists():
    numbers, anchors = _reference_headings()
    bad, n_cited = [], 0
    for path in _scanned_files():
        for loc, line in _lines(path):
            for number in _cited_sections(line):
                n_cited += 1
                if number not in numbers:
                    bad.append(f"{loc}: §{number} has no heading in docs/reference.md: {line.strip()}")
            bad += [f"{loc}: #{a} is not a heading anchor of docs/reference.md" for a in ANCHOR.findall(line)
                    if a not in anchors]
    assert not bad, "\n".join(bad)
    assert n_cited > 100  # the scan does find the citations (guards against a regex that matches nothing)


def test_cross_references_inside_the_reference_resolve():
    numbers, _ = _reference_headings()
    text = REFERENCE.read_text(encoding="utf-8")
    cited = {n for s in SECTION.finditer(text) for n in s.groups() if n}
    assert cited <= numbers, sorted(cited - numbers)


@pytest.mark.parametrize("line, expected", [
    ("(docs/reference.md §2.4–2.7)", ["2.4", "2.7"]),
    ("(docs/reference.md §5.2 steps 2–3), see", ["5.2"]),
    ("(docs/reference.md §9.6, §9.7; the paper §3.2)", ["9.6", "9.7"]),
    ("(docs/reference.md §6 and §9.19, the paper)", ["6", "9.19"]),
    ("[docs/reference.md §9](docs/reference.md" + "#9-known-bugs)", ["9"]),
    ("values from docs/reference.md, section cited per field", []),
])
def test_citation_parser(line, expected):
    assert list(_cited_sections(line)) == expected


@pytest.mark.parametrize("line, flagged", [
    (_WORDS["spec"] + " §2.4", True),
    (_WORDS["spec"] + "TRUM = 3", False),
    ("n_" + _WORDS["spec"] + "_items", False),
    (_WORDS["findings"] + ".md measured", True),
    ("# " + _WORDS["users"] + " P9: optional", True),
    ("N" + _WORDS["users"] + " = 3", False),
    ("see ../" + "shared/notes", True),
])
def test_external_patterns(line, flagged):
    assert any(p.search(line) for p in EXTERNAL.values()) is flagged
