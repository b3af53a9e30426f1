"""`python -m dns_filter --config-json FILE`: run the resolver from a JSON settings file."""

from __future__ import annotations

import argparse
import logging

from dns_filter.server import run
from dns_filter.settings import DnsSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dns_filter")
    parser.add_argument("--config-json", required=True, help="JSON object of DnsSettings fields")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    run(DnsSettings.from_json_file(args.config_json))


if __name__ == "__main__":
    main()
