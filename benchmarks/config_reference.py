"""The config reference, generated from pipeline/config.py: one row per key with its type, default and the comment
written beside (or above) it, section by section in the order the dataclasses declare them. readme_tables.py
renders it into docs/config.md, and tests/test_readme.py fails when the page and config.py disagree."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from common import ROOT  # noqa: F401  (puts the repository on sys.path)

from pipeline import config as config_module

SOURCE = Path(config_module.__file__)
SECTIONS = {field.name: field.type for field in dataclasses.fields(config_module.Config)}


def _comments(class_node: ast.ClassDef, lines: list[str]) -> dict[str, str]:
    """Field name -> its comment: the lines of `#` comments right above it, then the comment at its line's end."""
    comments = {}
    for node in class_node.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        above, row = [], node.lineno - 2
        while row >= 0 and lines[row].strip().startswith("#"):
            above.insert(0, lines[row].strip().lstrip("#").strip())
            row -= 1
        line = lines[node.end_lineno - 1]
        trailing = line.split("  # ", 1)[1].strip() if "  # " in line else ""
        comments[node.target.id] = " ".join(part for part in above + [trailing] if part)
    return comments


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
        if dataclasses.is_dataclass(value):
            return "(section)"
    else:
        return "(required)"
    return "null" if value is None else repr(value).replace("'", "")


def reference_table() -> str:
    lines = SOURCE.read_text().splitlines()
    tree = ast.parse(SOURCE.read_text())
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]

    def add(prefix: str, cls: type) -> None:
        node = classes[cls.__name__]
        comments = _comments(node, lines)
        annotations = {n.target.id: n for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        for field in dataclasses.fields(cls):
            key = f"{prefix}{field.name}"
            default = _default(field)
            if default == "(section)":
                add(f"{key}.", type(field.default_factory()))
                continue
            kind = ast.unparse(annotations[field.name].annotation).replace("|", "\\|")
            meaning = comments.get(field.name, "").replace("|", "\\|")
            rows.append(f"| `{key}` | `{kind}` | `{default}` | {meaning} |")

    for name in SECTIONS:
        add(f"{name}.", type(getattr(config_module.Config(), name)))
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(reference_table(), end="")
