"""SafeSearch / YouTube restricted mode by CNAME, for subscribers with "adult" on.

Names are the ones the engines document for network-level enforcement.
Only the search front-end hosts are rewritten (not mail.google.com etc.).
"""

from __future__ import annotations

import re

GOOGLE = "forcesafesearch.google.com"
YOUTUBE = "restrict.youtube.com"
BING = "strict.bing.com"
DUCKDUCKGO = "safe.duckduckgo.com"

_EXACT = {
    "www.youtube.com": YOUTUBE,
    "m.youtube.com": YOUTUBE,
    "youtube.com": YOUTUBE,
    "youtubei.googleapis.com": YOUTUBE,
    "youtube.googleapis.com": YOUTUBE,
    "www.youtube-nocookie.com": YOUTUBE,
    "www.bing.com": BING,
    "bing.com": BING,
    "duckduckgo.com": DUCKDUCKGO,
    "www.duckduckgo.com": DUCKDUCKGO,
    "start.duckduckgo.com": DUCKDUCKGO,
}
# google.<tld>, google.co.<cc>, google.com.<cc>, with or without www.
_GOOGLE = re.compile(r"^(?:www\.)?google\.(?:com?\.)?[a-z]{2,3}$")

TARGETS = frozenset({GOOGLE, YOUTUBE, BING, DUCKDUCKGO})


def safesearch_target(qname: str) -> str | None:
    target = _EXACT.get(qname)
    if target is not None:
        return target
    if "google." in qname and _GOOGLE.match(qname):
        return GOOGLE
    return None
