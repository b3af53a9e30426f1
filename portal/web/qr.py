"""QR codes as SVG documents, made on the server with segno (pure Python, no image
library): the console shows the operator's new TOTP secret as one, so no script or
third-party service ever sees the secret."""

from __future__ import annotations

import io

import segno


def svg(text: str) -> str:
    """`text` as a standalone SVG QR code (error correction M, as authenticator apps
    scan from a screen); dark on white with the standard 4-module quiet zone."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=5, border=4, xmldecl=False,
                                     dark="#000", light="#fff")
    return out.getvalue().decode()
