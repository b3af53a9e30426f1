"""A PDF read back as text with poppler's pdftotext (-layout), as the tests check invoices."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.requirements import need_binary


def text_of_file(path: Path) -> str:
    return subprocess.run([need_binary("pdftotext"), "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def pdf_text(data: bytes, tmp_path: Path, name: str = "doc.pdf") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return text_of_file(path)
