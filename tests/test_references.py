"""Every section reference in the repository names a section the protocol guides really have.

The code, the tests and the README cite the provider rules they follow as "§" references to the
numbered `##` / `###` headings of docs/100hp.md and docs/hash.md ("### 4.3 POST /withdrawal" is
§4.3). This test reads every *.py, *.sql and *.md file outside docs/, and in docs/ every other *.md
(architecture, operations, porting, scaling) and docs/openapi/*.yaml; it finds each reference and
fails listing every one that dangles as `file:line: reference (why)`.

The grammar, kept small on purpose:

    reference := [doc " "] "§" number
    doc       := "docs/100hp.md" | "100HP"  -> docs/100hp.md
               | "docs/hash.md"  | "Hash"   -> docs/hash.md
    number    := digits ("." digits)*        must be a heading of that doc

- A reference that names no doc takes it from the reference before it when only separators stand
  between the two (spaces, line breaks, `,` `;` `/` `-` `#`, "and", "or"): in
  "docs/hash.md §6.4, §11.5" and "docs/100hp.md §4.1-§4.6" every number is checked in that doc.
- Otherwise a bare reference takes the doc of the provider its file implements: wallet/hp100/,
  conformance/hp100.py and tests/test_100hp*.py cite docs/100hp.md; wallet/hash/,
  conformance/hash.py and tests/test_hash*.py cite docs/hash.md. Anywhere else a bare reference
  is an error: say which doc.
- A "§" not followed by a digit is not a reference (a regular expression, "§n.m" in prose).

A reference can name a heading that exists and still be wrong ("§5.3", the replay endpoint, cited
for truncation, which is §3.3). So each reference must have, within two lines of it, a word of the
cited section's topic: the words of its heading and of its parent's heading, and the words of an
`<!-- about: ... -->` line written right under a heading for the words its text uses that its title
does not (`<!-- about: truncates amount decimal -->` under "### 3.3 Money"). Words match on their
first five letters without a plural s ("truncated" matches "truncates"); words that stand near any
reference ("the", "casino", "hash", ...) count for nothing. An `about` word the section's own text
never uses fails its own test, so the list can only repeat what the section says. This is a net for
gross mistakes, not a proof: a reference near a word of a neighbouring topic still passes.

A further test fails if any tracked file points at a document the repository does not have: every
`*.md` a file names must be one of the repository's (by its path, from the root or from the file's
folder, or by a name only one tracked document has), and no relative path in a Markdown file may
climb out of the repository. This file is exempt from the first check (its grammar test makes up
references).
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()
GUIDES = ("100hp.md", "hash.md")
DOC_NAMES = {"docs/100hp.md": "100hp.md", "100HP": "100hp.md", "docs/hash.md": "hash.md", "Hash": "hash.md"}
REFERENCE = re.compile(r"(?:(?<![\w/])(docs/100hp\.md|docs/hash\.md|100HP|Hash)`?\s+)?§(\d+(?:\.\d+)*)")
SEPARATORS = re.compile(r"[\s,;/#–-]*(?:(?:and|or)[\s,;/#–-]+)?")
MARKDOWN_NAME = re.compile(r"(?<![\w./-])((?:\.\./|[\w.-]+/)*[\w-]+\.md)\b")
UPWARD = re.compile(r"(?<![\w.])(?:\.\./)+[^\s)`'\"]*")


def headings(name: str) -> set:
    """The section numbers of one guide: "## 3. Conventions" is 3, "### 4.3 POST /withdrawal" 4.3."""
    text = (ROOT / "docs" / name).read_text()
    return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, re.M))


def provider_doc(path: str) -> str | None:
    """The guide a bare § in this file cites: the one of the provider the file implements."""
    if path.startswith("wallet/hp100/") or path == "conformance/hp100.py" or \
            re.match(r"tests/test_100hp\w*\.py$", path):
        return "100hp.md"
    if path.startswith("wallet/hash/") or path == "conformance/hash.py" or \
            re.match(r"tests/test_hash\w*\.py$", path):
        return "hash.md"
    return None


def scanned_files() -> list:
    """*.py, *.sql and *.md outside docs/, hidden folders and caches; the docs that are not guides."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        here = Path(folder).relative_to(ROOT).as_posix()
        subfolders[:] = sorted(name for name in subfolders if not name.startswith((".", "__"))
                               and not (here == "." and name == "docs"))
        found += [f"{here}/{name}".removeprefix("./") for name in sorted(files)
                  if name.endswith((".py", ".sql", ".md"))]
    docs = ROOT / "docs"
    found += sorted(f"docs/{path.name}" for path in docs.glob("*.md") if path.name not in GUIDES)
    found += sorted(f"docs/openapi/{path.name}" for path in (docs / "openapi").glob("*.yaml"))
    return [path for path in found if path != THIS]


def references(path: str, text: str):
    """(guide or None, section number, line number, the reference as written), in order."""
    doc, end = None, None
    for match in REFERENCE.finditer(text):
        named, number = match.group(1), match.group(2)
        if named:
            doc = DOC_NAMES[named]
        elif end is None or not SEPARATORS.fullmatch(text, end, match.start()):
            doc = provider_doc(path)  # not part of a list that began with a doc's name
        end = match.end()
        yield doc, number, text.count("\n", 0, match.start()) + 1, match.group(0)


def dangling(path: str, text: str, sections: dict) -> list:
    """`path:line: reference (why)` for each reference of `text` that names no heading."""
    problems = []
    for doc, number, line, written in references(path, text):
        where = f"{path}:{line}: {written}"
        if doc is None:
            problems.append(f"{where} (bare §, and this file belongs to no provider: name the doc)")
        elif number not in sections[doc]:
            problems.append(f"{where} (docs/{doc} has no section {number})")
    return problems


# ---- is a cited section about what cites it? --------------------------------------------------------
# words that say nothing about a section: they stand near any reference
COMMON = set("""a an and are as at be by does each for from how in is it its no not of on one or the
this to two what who with api v2 post get 100hp hash casino merchant wallet implements""".split())


def stems(text: str) -> set:
    """Each word's first five letters, lower case, without a plural s: "truncated" and "truncation"
    both give "trunc", "users" gives "user", `HP_ALLOWED_IPS` gives "hp", "allow", "ip"."""
    return {word.rstrip("s")[:5] for word in re.findall(r"[a-z0-9]+", text.lower())}


def topic_stems(text: str) -> set:
    return {word.rstrip("s")[:5] for word in re.findall(r"[a-z0-9]+", text.lower())
            if len(word) > 1 and word not in COMMON}


def topics(name: str) -> dict:
    """Section number -> (the stems a citation of it may use, the `about` words its text lacks).

    A section's topic is the words of its heading and of an `<!-- about: word word -->` line right
    under it (words its text uses that its title does not), and those of its parent (§4.3 is also
    about "Endpoints the casino implements"). An `about` word the section's own text
    (subsections included) never uses is reported, so the list can only name what the section says."""
    text = (ROOT / "docs" / name).read_text()
    heads = list(re.finditer(r"^(#{2,3}) (\d+(?:\.\d+)?)\.? (.*)\n(?:<!-- about: (.*) -->\n)?", text, re.M))
    titles = {head.group(2): f"{head.group(3)} {head.group(4) or ''}" for head in heads}
    found = {}
    for i, head in enumerate(heads):
        level, number, title, about = head.groups()
        end = next((later.start() for later in heads[i + 1:] if len(later.group(1)) <= len(level)),
                   len(text))
        body = stems(text[head.end():end])
        words = (about or "").split()
        parent = titles.get(number.split(".")[0], "") if "." in number else ""
        found[number] = (topic_stems(f"{title} {parent} {' '.join(words)}"),
                         [word for word in words if not stems(word) <= body])
    return found


def off_topic(path: str, text: str, about: dict, reach: int = 2) -> list:
    """`path:line: reference (heading)` for each reference with none of its section's topic words
    within `reach` lines of it."""
    lines, problems = text.splitlines(), []
    for doc, number, line, written in references(path, text):
        if doc is None or number not in about[doc]:
            continue  # dangling: the test above says so
        near = stems(" ".join(lines[max(0, line - 1 - reach):line + reach]))
        if not about[doc][number][0] & near:
            problems.append(f"{path}:{line}: {written} (docs/{doc} §{number} is about none of the words near it)")
    return problems


def test_every_section_reference_names_a_heading_of_its_guide():
    sections = {name: headings(name) for name in GUIDES}
    problems = []
    for path in scanned_files():
        problems += dangling(path, (ROOT / path).read_text(encoding="utf-8", errors="replace"), sections)
    assert not problems, f"{len(problems)} dangling reference(s):\n" + "\n".join(problems)


def test_every_section_reference_is_near_a_word_of_its_section():
    """A reference to the wrong section usually names one that exists ("§5.3" for truncation, which
    is §3.3): within two lines of each reference stands a word of the cited section's heading, of its
    parent's, or of its `about` line (see `topics`)."""
    about = {name: topics(name) for name in GUIDES}
    problems = []
    for path in scanned_files():
        problems += off_topic(path, (ROOT / path).read_text(encoding="utf-8", errors="replace"), about)
    assert not problems, f"{len(problems)} reference(s) to a section about something else:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", GUIDES)
def test_about_lines_name_only_what_their_section_says(name):
    unsaid = {number: missing for number, (_, missing) in topics(name).items() if missing}
    assert not unsaid, f"docs/{name}: `about` words the section never uses: {unsaid}"


def test_the_reference_grammar():
    """The rules of the docstring, on made-up lines (so a change to the grammar shows here first)."""
    sections = {"100hp.md": {"3", "4.1", "4.3", "4.6"}, "hash.md": {"3.4", "6.4", "11.5"}}
    assert dangling("wallet/core/x.py", "docs/100hp.md §4.3, Hash §3.4; 100HP §4.1-§4.6", sections) == []
    assert dangling("wallet/core/x.py", "(docs/hash.md §6.4,\n# §11.5 and §3.4)", sections) == []
    assert dangling("wallet/hp100/x.py", "§4.3; Hash §3.4, §6.4", sections) == []
    assert dangling("tests/test_hash_e2e.py", "§11.5 and 100HP §3", sections) == []
    assert dangling("wallet/core/x.py", "see r'§(\\d+)' and §n.m", sections) == []
    assert dangling("wallet/core/x.py", "Hash §3.4 says\nso (§4.3)", sections) == [
        "wallet/core/x.py:2: §4.3 (bare §, and this file belongs to no provider: name the doc)"]
    assert dangling("wallet/hash/x.py", "§4.3 or 100HP §15.6-7, §4.3.2", sections) == [
        "wallet/hash/x.py:1: §4.3 (docs/hash.md has no section 4.3)",
        "wallet/hash/x.py:1: 100HP §15.6 (docs/100hp.md has no section 15.6)",
        "wallet/hash/x.py:1: §4.3.2 (docs/hash.md has no section 4.3.2)"]


def test_the_topic_rule():
    """The rule of the third test, on made-up lines: the port that cited §5.3 (the replay endpoint)
    for truncation (§3.3) is caught; its fix, and a code near the number, pass."""
    about = {"100hp.md": {"3.3": (topic_stems("Money truncates amount decimal"), []),
                          "5.3": (topic_stems("GET /replay Endpoints the partner calls"), [])},
             "hash.md": {}}
    port = "# Balances are cents: the blueprint has\n# truncated every amount already (docs/100hp.md {})\n"
    assert off_topic("examples/x.py", port.format("§5.3"), about) == [
        "examples/x.py:2: docs/100hp.md §5.3 (docs/100hp.md §5.3 is about none of the words near it)"]
    assert off_topic("examples/x.py", port.format("§3.3"), about) == []
    two_lines_away = "# amounts\n" + "x = 1\n" + "y = 2  # §3.3\n"
    three_lines_away = "# amounts\n" + "x = 1\n" * 2 + "y = 2  # §3.3\n"
    assert off_topic("wallet/hp100/x.py", two_lines_away, about) == []
    assert off_topic("wallet/hp100/x.py", three_lines_away, about) == [
        "wallet/hp100/x.py:4: §3.3 (docs/100hp.md §3.3 is about none of the words near it)"]


def tracked_files() -> list:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [path for path in listed.stdout.decode().split("\0") if path and (ROOT / path).is_file()]


def outside_references(path: str, text: str, documents: set) -> list:
    """`path:line: name` for each document `text` names that the repository does not have."""
    folder = Path(path).parent
    names = [Path(doc).name for doc in documents]
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        for name in MARKDOWN_NAME.findall(line):
            inside = (name in documents or os.path.normpath(folder / name) in documents
                      or names.count(name) == 1)
            problems += [] if inside else [f"{path}:{number}: {name}"]
        if path.endswith(".md"):
            ups = [up.rstrip(".,;:") for up in UPWARD.findall(line)]
            problems += [f"{path}:{number}: {up}" for up in ups
                         if not (ROOT / folder / up).resolve().is_relative_to(ROOT)]
    return list(dict.fromkeys(problems))  # a path climbing out that names a document: said once


def test_nothing_points_outside_the_repository():
    files = tracked_files()
    documents = {path for path in files if path.endswith(".md")}
    problems = []
    for path in files:
        if path != THIS:
            problems += outside_references(path, (ROOT / path).read_bytes().decode("utf-8", "replace"), documents)
    assert not problems, "documents the repository does not have:\n" + "\n".join(problems)


def test_what_points_outside():
    """The rules of the second test, on made-up lines."""
    documents = {"README.md", "docs/hash.md", "bench/README.md"}
    assert outside_references("docs/porting.md", "see docs/hash.md, hash.md and ../README.md", documents) == []
    assert outside_references("bench/run.py", "# bench/README.md; ../README.md", documents) == []
    assert outside_references("wallet/x.py", "# the rule in NOTES.md §4", documents) == ["wallet/x.py:1: NOTES.md"]
    assert outside_references("README.md", "[spec](../notes/spec/100hp.md), [x](../notes/)", documents) == [
        "README.md:1: ../notes/spec/100hp.md", "README.md:1: ../notes/"]
    assert outside_references("README.md", "two READMEs: README.md is ambiguous only by name", documents | {"a/README.md"}) == []
