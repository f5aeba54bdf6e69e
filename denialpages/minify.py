"""The minified form of every page: what htmlmin makes of HTML, reached without running it per page."""

from __future__ import annotations

import re
from functools import lru_cache
from html import unescape

import htmlmin
from htmlmin.escape import escape_attr_value

ATTRIBUTE = re.compile(r'="([^"<>&]*&[^"<>]*)"')
TAG_OR_TEXT = re.compile(r"(<[^>]*>)")
SPACE_RUN = re.compile("[\x20\x09\x0a\x0c\x0d]+")  # HTML's white space, as htmlmin reads it
# What htmlmin treats specially: kept white space, comments, self-closing and rewritten tags.
NEEDS_HTMLMIN = re.compile(r"<(?:!|(?:pre|textarea|/?br|hr|img|input)\b)|<[^>]*(?:&|'|/>)[^>]*>", re.IGNORECASE)


def minify(html: str) -> str:
    """Return HTML as htmlmin leaves it (comments and white space between tags removed)."""
    return htmlmin.minify(html, remove_comments=True, remove_empty_space=True,
                          reduce_boolean_attributes=True, remove_optional_attribute_quotes=False)


def minify_markup(html: str) -> str:
    """Return the same as minify() for HTML such as Markdown makes, much faster.

    Text between tags is white space collapsed, and dropped when it is only white space with a
    line break, as htmlmin does; anything else htmlmin rewrites is left to htmlmin itself.
    """
    if NEEDS_HTMLMIN.search(html):
        return minify(html)
    pieces = TAG_OR_TEXT.split(html)
    for at in range(0, len(pieces), 2):
        text = pieces[at]
        if "\n" in text or "  " in text or "\t" in text or "\r" in text or "\f" in text:
            collapsed = SPACE_RUN.sub(" ", text)
            pieces[at] = "" if collapsed == " " and ("\n" in text or "\r" in text) else collapsed
    return "".join(pieces)


def finish(html: str) -> str:
    """Return rendered output as htmlmin would leave it: no line breaks between tags, its quotes.

    Valid because no text a page carries holds a line break: data fields are joined onto one
    line when loaded and Markdown is minified once per file.
    """
    html = close_tag_gaps(html)
    return ATTRIBUTE.sub(_requote, html) if "&" in html else html


def close_tag_gaps(html: str) -> str:
    """Return `html` with every `>`, spaces, a line break, white space, `<` run closed up to `><`.

    The same as substituting the pattern `>[ \\t]*\\n\\s*<`, but it visits only the line breaks:
    a page has about ten, and a regular expression would try every `>` of 40 KB.
    """
    pieces, start, end = [], 0, len(html)
    at = html.find("\n")
    while at >= 0:
        left, right = at, at + 1
        while left > start and html[left - 1] in " \t":
            left -= 1
        while right < end and html[right].isspace():
            right += 1
        if left > start and html[left - 1] == ">" and right < end and html[right] == "<":
            pieces.append(html[start:left])
            start = right
            at = html.find("\n", right)
        else:
            at = html.find("\n", at + 1)
    pieces.append(html[start:])
    return "".join(pieces)


def _requote(match: re.Match[str]) -> str:
    return _requoted(match.group(1))


@lru_cache(maxsize=4096)  # the policy, the statute links and each page's checkout link repeat
def _requoted(value: str) -> str:
    return '="' + escape_attr_value(unescape(value), double_quote=True)[0] + '"'

