"""The README and the docs point at files that exist: every relative Markdown link resolves."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def relative_links(document: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", document.read_text(), flags=re.S)  # code blocks hold no links
    return [target for target in LINK.findall(text)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")]


def test_every_relative_link_in_the_readme_and_docs_resolves_to_a_file():
    broken = [f"{document.relative_to(ROOT)}: {target}"
              for document in documents() for target in relative_links(document)
              if not (document.parent / target.split("#")[0]).exists()]
    assert broken == []


def test_the_readme_links_every_document_in_docs():
    linked = {(ROOT / target.split("#")[0]).resolve() for target in relative_links(ROOT / "README.md")}
    assert [str(d.relative_to(ROOT)) for d in documents()[1:] if d.resolve() not in linked] == []
