"""The report of a conformance run: a checklist for people, JSON for machines, JUnit XML for CI.

Text: one line per case (PASS, FAIL, WARN, SKIP); under a FAIL or WARN the request as it was sent
(a secret that was sent shows as "***"), the answer, and what was expected; whatever the case's
clean-up could not settle. What the wallet answered is printed escaped (printable()); JSON escapes
it by itself (ensure_ascii), JUnit XML replaces what XML cannot hold.

JUnit (`--junit FILE`): one <testsuite> of <testcase> elements. A FAIL is a <failure>; a SKIP is a
<skipped>; a WARN (a rule of this project's, not the provider's) is also a <skipped> whose message
starts with "WARNING", and carries <property name="verdict" value="WARN"/>, so that CI shows it
without failing the build (--strict makes it a <failure>).
"""
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from .runner import FAIL, PASS, SKIP, WARN


def counts(results) -> dict:
    return {name: sum(r.verdict == verdict for r in results)
            for name, verdict in (("passed", PASS), ("failed", FAIL), ("warnings", WARN), ("skipped", SKIP))}


def summary(results) -> str:
    c = counts(results)
    return (f"{c['passed']} passed, {c['failed']} failed, {c['warnings']} warnings, "
            f"{c['skipped']} skipped")


def printable(text) -> str:
    """Text that may come from the wallet, safe to print: each character a terminal would act on
    (escape sequences, control characters, line breaks, bidirectional overrides) written as \\xNN
    or \\uNNNN. A wallet's answer must not retitle, clear or forge lines of the user's terminal."""
    return "".join(c if c.isprintable() else
                   (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}" if ord(c) < 0x10000
                    else f"\\U{ord(c):08x}") for c in str(text))


def text(title: str, results, notes=()) -> str:
    """The checklist; every line printable() (what a wallet answered reaches it)."""
    lines = [title, *notes]
    for r in results:
        lines.append(f"  {r.verdict}  {r.name}" + (f"  ({r.why_skipped})" if r.why_skipped else ""))
        if r.verdict == WARN or (r.verdict == FAIL and r.ours):
            lines.append(f"        {_decision(r)}")
        for problem in r.problems:
            lines += [f"        sent:     {_short(problem['sent'])}",
                      f"        got:      {_short(problem['got'])}",
                      f"        expected: {problem['expected']}"]
        for item in r.left_open:
            lines.append(f"        left open: {item}")
    lines.append(summary(results))
    return "\n".join(printable(line) for line in lines)


def as_json(title: str, results, notes=()) -> str:
    return json.dumps({"title": title, "notes": list(notes), **counts(results),
                       "cases": [r.__dict__ for r in results]}, indent=2, default=str)


def junit(suite: str, results) -> str:
    c = counts(results)
    root = ET.Element("testsuites", name="conformance")
    element = ET.SubElement(root, "testsuite", name=suite, tests=str(len(results)),
                            failures=str(c["failed"]), errors="0",
                            skipped=str(c["skipped"] + c["warnings"]),
                            time=f"{sum(r.seconds for r in results):.3f}",
                            timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    for r in results:
        case = ET.SubElement(element, "testcase", classname=suite, name=_xml(r.name),
                             time=f"{r.seconds:.3f}")
        properties = ET.SubElement(case, "properties")
        ET.SubElement(properties, "property", name="verdict", value=r.verdict)
        if r.source:
            ET.SubElement(properties, "property", name="source", value=r.source)
        details = "\n\n".join(_details(p) for p in r.problems)
        details = _xml(details + "".join(f"\nleft open: {item}" for item in r.left_open))
        if r.verdict == FAIL:
            first = r.problems[0]["expected"] if r.problems else "failed"
            ET.SubElement(case, "failure", message=_xml(first), type="conformance").text = details
        elif r.verdict == WARN:
            message = f"WARNING, {_decision(r)}: {r.problems[0]['expected']}"
            ET.SubElement(case, "skipped", message=_xml(message)).text = details
        elif r.verdict == SKIP:
            ET.SubElement(case, "skipped", message=r.why_skipped)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _decision(r) -> str:
    return f"this project's decision, not the provider's: {r.ours}" if r.ours else \
        "a rule of this project's, not the provider's"


def _details(problem) -> str:
    return (f"sent:     {_short(problem['sent'], 4000)}\ngot:      {_short(problem['got'], 4000)}\n"
            f"expected: {problem['expected']}")


_NOT_XML = re.compile(r"[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    """XML 1.0 cannot hold NUL, most control characters or lone surrogates: shown as \\uXXXX."""
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _short(value, limit=400) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=True)
    return text if len(text) <= limit else text[:limit] + "..."
