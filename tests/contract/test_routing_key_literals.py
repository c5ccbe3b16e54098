"""Issue 13: a routing key (``"<entity>.<verb>.v<N>"``) is written as a literal only where it is named: a service's
``events.py`` (the platform's own command outcomes: ``shared/runtime/events.py``) and
``contracts-schema/catalog.json``. Everywhere else, docstrings included, the constant is used: a key renamed in one
place then cannot stay behind in another."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LITERAL = re.compile(r"""(["'])[a-z_]+\.[a-z_]+\.v[0-9]+\1""")


def stray_literals(relative: str, text: str) -> list[str]:
    """The lines of one source file (path relative to the repository) that write a routing key where they may not."""
    path = Path(relative)
    if path.name == "events.py":
        return []
    return [f"{relative}:{number}: {line.strip()}" for number, line in enumerate(text.splitlines(), 1)
            if LITERAL.search(line)]


def test_no_routing_key_literal_outside_the_modules_that_name_them():
    found = []
    for top in ("services", "shared"):
        for path in sorted((ROOT / top).rglob("*.py")):
            found += stray_literals(str(path.relative_to(ROOT)), path.read_text())
    assert found == [], "use the constant of the service's events.py:\n" + "\n".join(found)


def test_the_rule_catches_a_literal_in_code_and_in_a_docstring_and_allows_the_naming_places():
    assert stray_literals("services/postings/service.py", 'emit("posting.published.v1", data)\n')
    assert stray_literals("services/gateway/commands.py", '"""    @command(\'posting.create.v1\')"""\n')
    assert stray_literals("shared/runtime/messaging.py", 'subscribe("providers", "provider.registered.v1")\n')
    assert not stray_literals("services/postings/events.py", 'PUBLISHED = "posting.published.v1"\n')
    assert stray_literals("shared/runtime/commands.py", 'REJECTED = "command.rejected.v1"\n')
    assert not stray_literals("shared/runtime/events.py", 'COMMAND_REJECTED = "command.rejected.v1"\n')
    assert not stray_literals("services/postings/service.py", '"""Emits ``posting.published.v1``."""\n')
