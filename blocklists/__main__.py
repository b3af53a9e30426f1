"""`python -m blocklists --config-json FILE`: run one update and print the report.

Exit status: 0 all sources fine, 1 some source failed or was rejected (the
previous copy was used), 2 the build failed (previous generation kept).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from blocklists.settings import BlocklistSettings
from blocklists.update import update


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blocklists")
    parser.add_argument(
        "--config-json", required=True, help="JSON object of BlocklistSettings fields"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = BlocklistSettings.from_dict(json.loads(Path(args.config_json).read_text()))
    report = update(settings)
    print(json.dumps(asdict(report), indent=1))
    if report.error:
        return 2
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
