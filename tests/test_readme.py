"""Every result table in README.md and docs/ equals its rendering from the committed file that holds its numbers,
and the README stays a page a newcomer reads in ten minutes."""

import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

import readme_tables  # noqa: E402


def test_every_table_matches_its_source_file_and_each_renderer_has_one_table():
    names = [match[1] for document in readme_tables.DOCUMENTS for match in readme_tables.BLOCK.findall(document.read_text())]
    assert sorted(names) == sorted(readme_tables.RENDERERS), "every renderer has exactly one table in README.md or docs/"
    assert readme_tables.check_all() == [], "tables differ from their files; run benchmarks/readme_tables.py --write"


def test_a_changed_number_is_caught(monkeypatch):
    text = readme_tables.README.read_text()
    name = readme_tables.BLOCK.search(text).group("name")
    original = readme_tables.RENDERERS[name]
    monkeypatch.setitem(readme_tables.RENDERERS, name, lambda: original().replace("|", "| ", 1))
    assert readme_tables.differences(text)[1] == [name]


def test_the_config_reference_lists_every_key_of_the_config():
    from pipeline.config import Config, flat_dict, to_dict

    page = (REPO_ROOT / "docs" / "config.md").read_text()
    listed = re.findall(r"^\| `([\w.]+)` \|", page, re.M)
    assert listed == list(flat_dict(to_dict(Config())))
    assert all(row.rstrip().endswith("|") and "|  |" not in row for row in page.splitlines() if row.startswith("| `")), "every key has a meaning"


def test_readme_is_short_and_its_links_resolve():
    text = readme_tables.README.read_text()
    assert len(text.splitlines()) <= 250
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if not target.startswith("http"):
            assert (REPO_ROOT / target).exists(), target
