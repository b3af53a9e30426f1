"""The RADIUS dictionary shipped inside the package."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pyrad.dictionary import Dictionary

DICTIONARY_PATH = Path(__file__).with_name("dictionaries") / "dictionary"


@cache
def load_dictionary() -> Dictionary:
    return Dictionary(str(DICTIONARY_PATH))
