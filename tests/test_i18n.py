"""The Japanese catalogue is complete, compiled, and covers every string the app marks."""

from __future__ import annotations

import ast
import gettext
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "django_entra_sso"
LOCALE = PACKAGE / "locale"
JA_PO = LOCALE / "ja" / "LC_MESSAGES" / "django.po"
JA_MO = LOCALE / "ja" / "LC_MESSAGES" / "django.mo"
EN_PO = LOCALE / "en" / "LC_MESSAGES" / "django.po"


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    line: int = 0

    @property
    def key(self) -> str:
        return self.msgid if self.msgctxt is None else f"{self.msgctxt}\x04{self.msgid}"


def _unquote(text: str) -> str:
    value = ast.literal_eval(text.strip())
    assert isinstance(value, str)
    return value


def parse_po(path: Path) -> list[Entry]:
    """A small .po reader: msgctxt, msgid, msgid_plural, msgstr[n], flags; no obsolete entries."""
    entries: list[Entry] = []
    entry: Entry | None = None
    target: tuple[str, int] | None = None
    pending_flags: set[str] = set()

    def finish() -> None:
        nonlocal entry
        if entry is not None:
            entries.append(entry)
        entry = None

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line:
            finish()
            target = None
            continue
        if line.startswith("#~"):
            continue
        if line.startswith("#,"):
            finish()
            pending_flags = {flag.strip() for flag in line[2:].split(",")}
            continue
        if line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if line.startswith('"'):
            assert entry is not None and target is not None, f"{path}:{number}"
            name, index = target
            if name == "msgstr":
                entry.msgstr[index] += _unquote(line)
            else:
                setattr(entry, name, getattr(entry, name) + _unquote(line))
            continue
        if keyword in ("msgctxt", "msgid") and (entry is None or entry.msgstr):
            finish()
            entry = Entry(flags=pending_flags, line=number)
            pending_flags = set()
        assert entry is not None, f"{path}:{number}: {raw}"
        if keyword.startswith("msgstr"):
            match = re.fullmatch(r"msgstr(?:\[(\d+)\])?", keyword)
            assert match, f"{path}:{number}: {raw}"
            index = int(match.group(1) or 0)
            entry.msgstr[index] = _unquote(rest)
            target = ("msgstr", index)
        elif keyword in ("msgid", "msgctxt", "msgid_plural"):
            setattr(entry, keyword, _unquote(rest))
            target = (keyword, 0)
        else:
            raise AssertionError(f"{path}:{number}: cannot read {raw!r}")
    finish()
    return entries


def messages(path: Path) -> list[Entry]:
    return [e for e in parse_po(path) if e.msgid]


def header(path: Path) -> Entry:
    [first] = [e for e in parse_po(path) if not e.msgid and e.msgctxt is None]
    return first


JA = messages(JA_PO)
PLACEHOLDER = re.compile(r"%(?:\([a-z_]+\))?[sdifr%]")


def entry_id(entry: Entry) -> str:
    return entry.msgid[:40]


def test_catalogue_is_not_empty() -> None:
    assert len(JA) > 50


def test_header_is_utf8_japanese_and_not_fuzzy() -> None:
    head = header(JA_PO)
    text = head.msgstr[0]
    assert "fuzzy" not in head.flags
    assert "Language: ja\n" in text
    assert "charset=UTF-8" in text
    assert "Plural-Forms: nplurals=1; plural=0;" in text


@pytest.mark.parametrize("entry", JA, ids=entry_id)
def test_every_message_is_translated_and_not_fuzzy(entry: Entry) -> None:
    assert "fuzzy" not in entry.flags, f"fuzzy translation at line {entry.line}"
    assert entry.msgstr
    assert all(text.strip() for text in entry.msgstr.values()), f"empty msgstr at {entry.line}"


@pytest.mark.parametrize("entry", [e for e in JA if "python-format" in e.flags], ids=entry_id)
def test_translations_keep_the_placeholders(entry: Entry) -> None:
    expected = sorted(PLACEHOLDER.findall(entry.msgid))
    for text in entry.msgstr.values():
        assert sorted(PLACEHOLDER.findall(text)) == expected


def test_compiled_catalogue_matches_the_po_file() -> None:
    with JA_MO.open("rb") as handle:
        catalogue = gettext.GNUTranslations(handle)
    stale = []
    for entry in JA:
        if entry.msgid_plural is not None:
            got = [catalogue.ngettext(entry.msgid, entry.msgid_plural, n) for n in (1, 2)]
            if got[0] != entry.msgstr[0]:
                stale.append(entry.msgid)
        else:
            got_one = (
                catalogue.gettext(entry.msgid)
                if entry.msgctxt is None
                else catalogue.pgettext(entry.msgctxt, entry.msgid)
            )
            if got_one != entry.msgstr[0]:
                stale.append(entry.msgid)
    assert stale == [], "django.mo is older than django.po; run compilemessages"


def test_english_catalogue_has_the_same_messages() -> None:
    assert {e.key for e in messages(EN_PO)} == {e.key for e in JA}


# -- every string the app marks for translation is in the catalogue ------------------

GETTEXT_NAMES = {"_", "gettext", "gettext_lazy", "gettext_noop", "ngettext", "ngettext_lazy"}
CONTEXT_NAMES = {"pgettext", "pgettext_lazy", "npgettext", "npgettext_lazy"}


def python_strings() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            args = node.args
            if name in CONTEXT_NAMES and len(args) >= 2:
                ctx, msg = args[0], args[1]
                if isinstance(ctx, ast.Constant) and isinstance(msg, ast.Constant):
                    found.add(f"{ctx.value}\x04{msg.value}")
            elif name in GETTEXT_NAMES and args:
                first = args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add(first.value)
    return found


TRANSLATE_TAG = re.compile(
    r"""\{%\s*trans(?:late)?\s+("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')(.*?)%\}""", re.S
)
BLOCK_TAG = re.compile(
    r"\{%\s*blocktrans(?:late)?(?P<options>[^%]*)%\}(?P<body>.*?)\{%\s*endblocktrans(?:late)?\s*%\}",
    re.S,
)
CONTEXT_OPTION = re.compile(r"""context\s+("[^"]*"|'[^']*')""")


def template_strings() -> set[str]:
    found: set[str] = set()
    for path in (PACKAGE / "templates").rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        for match in TRANSLATE_TAG.finditer(text):
            msgid = match.group(1)[1:-1]
            context = CONTEXT_OPTION.search(match.group(2))
            found.add(msgid if context is None else f"{context.group(1)[1:-1]}\x04{msgid}")
        for match in BLOCK_TAG.finditer(text):
            options, body = match.group("options"), match.group("body")
            if "count" in options or "{% plural" in body or "context" in options:
                continue  # rare forms this small reader does not rebuild
            if "trimmed" in options:
                body = " ".join(line.strip() for line in body.splitlines() if line.strip())
            body = body.replace("%", "%%")
            body = re.sub(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", r"%(\1)s", body)
            found.add(body)
    return found


def test_every_marked_string_is_in_the_catalogue() -> None:
    marked = python_strings() | template_strings()
    assert "Work email" in marked  # the reader finds what it should
    assert "Enterprise single sign-on" in marked
    missing = sorted(marked - {e.key for e in JA})
    assert missing == [], "run makemessages -l ja -l en, translate, compilemessages"
