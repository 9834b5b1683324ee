"""Text on the wire: what both providers' field rules require of a string before it is stored
(`storable`), and how request text may appear in a log line (`shown`).

Standard library only, like wallet/core/money.py, so that the field rules can be copied without
the schema (tests/test_imports.py).
"""
import re


def storable(value: str) -> bool:
    """JSON can carry lone surrogates ("\\ud800") and NUL, which no database column can store: both
    providers' field rules refuse such text before it reaches one."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


def shown(value, limit=200) -> str:
    """Text from a request as it may appear in a log line: every character outside printable ASCII,
    the backslash and the blank written as a backslash escape (`\\n`, `\\x1b`, `\\x20`, `\\u2028`),
    and cut at `limit` characters. A request can then start neither a log line of its own nor a
    field of its own in one (log injection)."""
    text = str(value)
    if len(text) <= limit and _PLAIN.match(text):  # most paths and methods: nothing to escape
        return text
    escaped = "".join(_escape(char) for char in text[:limit])
    return escaped + ("..." if len(text) > limit else "")


_PLAIN = re.compile(r"[!-\[\]-~]*\Z")  # printable ASCII but the blank and the backslash


def _escape(char: str) -> str:
    if char == " ":
        return "\\x20"
    if "!" <= char <= "~" and char != "\\":
        return char
    return char.encode("unicode_escape").decode("ascii")  # as in repr(), and non-ASCII too
