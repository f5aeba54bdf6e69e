"""The minified form of every page: what htmlmin makes of HTML, reached without running it per page."""

from __future__ import annotations

import re
from functools import lru_cache
from html import unescape

import htmlmin
from htmlmin.escape import escape_attr_value

ATTRIBUTE = re.compile(r'="([^"<>&]*&[^"<>]*)"')
TAG_GAP = re.compile(r">[ \t]*\n\s*<")


def minify(html: str) -> str:
    """Return HTML as htmlmin leaves it (comments and white space between tags removed)."""
    return htmlmin.minify(html, remove_comments=True, remove_empty_space=True,
                          reduce_boolean_attributes=True, remove_optional_attribute_quotes=False)


def finish(html: str) -> str:
    """Return rendered output as htmlmin would leave it: no line breaks between tags, its quotes.

    Valid because no text a page carries holds a line break: data fields are joined onto one
    line when loaded and Markdown is minified once per file.
    """
    html = TAG_GAP.sub("><", html)
    return ATTRIBUTE.sub(_requote, html) if "&" in html else html


def _requote(match: re.Match[str]) -> str:
    return _requoted(match.group(1))


@lru_cache(maxsize=4096)  # the policy, the statute links and each page's checkout link repeat
def _requoted(value: str) -> str:
    return '="' + escape_attr_value(unescape(value), double_quote=True)[0] + '"'

