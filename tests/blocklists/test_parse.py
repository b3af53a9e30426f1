from __future__ import annotations

from blocklists.parse import normalise, parse_line, parse_text


def test_formats() -> None:
    text = """
# comment
! adblock comment
[Adblock Plus 2.0]
0.0.0.0 ads.example.com
127.0.0.1 a.example b.example  # two names on one hosts line
0.0.0.0 localhost
plain.example
||adblock.example^
||withopt.example^$third-party
*.wild.example
Upper.Example.COM.
b\u00fccher.example
"""
    result = parse_text(text.splitlines())
    assert result.domains == {
        "ads.example.com",
        "a.example",
        "b.example",
        "plain.example",
        "adblock.example",
        "withopt.example",
        "wild.example",
        "upper.example.com",
        "xn--bcher-kva.example",
    }
    assert result.rejected == 0


def test_rejects_garbage_and_whole_tlds() -> None:
    assert parse_line("<html><body>") is False
    assert parse_line("||bad^path/x") is False
    assert parse_line("com") is False
    assert parse_line("two words here") is False
    assert parse_line("@@||allowed.example^") is None
    assert normalise("-bad-.example") is None
    assert normalise("a" * 64 + ".example") is None
    result = parse_text(["good.example", "<<<", "also good.example"])
    assert result.domains == {"good.example"} and result.rejected == 2
