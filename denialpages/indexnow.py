"""IndexNow: the key file the build publishes, and the POST that tells search engines what changed.

The protocol (https://www.indexnow.org/documentation): a key of 8-128 letters, digits and hyphens,
served as plain text at `{base_url}/{key}.txt`; a JSON POST of `host`, `key`, `keyLocation` and
`urlList` (at most 10,000 URLs a request) to one endpoint, which shares it with every
participating engine. Added, changed and removed URLs all go: an engine re-crawls a removed one
and finds it gone or redirected.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .changes import Change, is_page_url

if TYPE_CHECKING:
    from .model import Site

ENDPOINT = "https://api.indexnow.org/indexnow"
MAX_URLS = 10_000  # per POST: "up to 10,000 URLs per post" (indexnow.org/documentation)
TIMEOUT = 30  # seconds per request
ACCEPTED = (200, 202)  # 202: received, the key is still being verified
REFUSALS = {
    400: "the request was not valid JSON or lacked a field",
    403: "the key was not found at keyLocation: publish the site (with its key file) before submitting",
    422: "a URL is not on the key's host, or the key does not match the key file",
    429: "too many requests: submit less often",
}


@dataclass(frozen=True, slots=True)
class Submission:
    """One POST: the JSON body IndexNow takes."""

    host: str
    key: str
    key_location: str
    urls: tuple[str, ...]

    def body(self) -> bytes:
        """Return the request body in the protocol's field names."""
        payload = {"host": self.host, "key": self.key, "keyLocation": self.key_location, "urlList": list(self.urls)}
        return json.dumps(payload, indent=1).encode("utf-8")


def key_file_name(key: str) -> str:
    """Return the path under out/ of the key file: `{key}.txt` at the root."""
    return f"{key}.txt"



def submitted_urls(site: Site, changes: tuple[Change, ...]) -> list[str]:
    """Return the absolute URLs of the pages added, changed or removed, each once, in file order."""
    urls = dict.fromkeys(site.base_url + c.url for c in changes if is_page_url(c.url))
    return list(urls)


def submissions(site: Site, urls: list[str], max_urls: int = MAX_URLS) -> Iterator[Submission]:
    """Yield the POSTs that carry `urls`, at most `max_urls` each."""
    host = urllib.parse.urlsplit(site.base_url).hostname or ""
    location = f"{site.base_url}/{key_file_name(site.indexnow_key)}"
    for start in range(0, len(urls), max_urls):
        yield Submission(host, site.indexnow_key, location, tuple(urls[start : start + max_urls]))


def submit(endpoint: str, submission: Submission) -> int:
    """POST one submission; return the HTTP status, or raise RuntimeError saying why it was refused."""
    import urllib.request  # noqa: PLC0415 (http.client and email cost every other command 60 ms at start-up)

    request = urllib.request.Request(endpoint, data=submission.body(), method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        error.close()  # the refusal's own response, unread
        why = REFUSALS.get(error.code, "the endpoint refused the request")
        raise RuntimeError(f"{endpoint} answered {error.code} {error.reason}: {why}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise RuntimeError(f"cannot reach {endpoint}: {reason}") from None
    if status not in ACCEPTED:
        raise RuntimeError(f"{endpoint} answered {status}; IndexNow accepts with 200 or 202")
    return status
