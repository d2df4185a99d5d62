"""Every result table in README.md equals its rendering from the committed file that holds its numbers."""

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

import readme_tables  # noqa: E402


def test_readme_tables_match_their_source_files():
    text = (REPO_ROOT / "README.md").read_text()
    blocks = readme_tables.BLOCK.findall(text)
    assert {match[1] for match in blocks} == set(readme_tables.RENDERERS), "every renderer has its table in the README and vice versa"
    _, changed = readme_tables.differences(text)
    assert changed == [], f"README tables differ from their files: {changed}; run benchmarks/readme_tables.py --write"


def test_a_changed_number_is_caught(monkeypatch):
    text = (REPO_ROOT / "README.md").read_text()
    name = next(iter(readme_tables.RENDERERS))
    original = readme_tables.RENDERERS[name]
    monkeypatch.setitem(readme_tables.RENDERERS, name, lambda: original().replace("|", "| ", 1))
    assert readme_tables.differences(text)[1] == [name]


if __name__ == "__main__":
    pytest.main([__file__])
