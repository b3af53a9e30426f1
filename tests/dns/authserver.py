"""A real authoritative DNS server for the tests (dnslib, UDP and TCP).

Zone rules (every name is ours):
  nx*.<anything>             NXDOMAIN with an SOA (minimum 60) in authority
  big.test TXT               > 512 bytes: truncated over UDP, whole over TCP
  ttl1.* A                   TTL 1 (serve-stale tests)
  forcesafesearch.google.com, restrict.youtube.com, strict.bing.com, safe.duckduckgo.com:
                             their real published addresses
  anything else              A <--answer-ip> / AAAA 2001:db8::1, TTL 300
  servfail.test              SERVFAIL
Run: python authserver.py --port N [--answer-ip 192.0.2.1]
"""

from __future__ import annotations

import argparse
import time

from dnslib import AAAA, QTYPE, RCODE, RR, SOA, TXT, A
from dnslib.server import BaseResolver, DNSHandler, DNSServer

SAFE = {
    "forcesafesearch.google.com.": "216.239.38.120",
    "restrict.youtube.com.": "216.239.38.120",
    "strict.bing.com.": "204.79.197.220",
    "safe.duckduckgo.com.": "52.250.41.2",
}


class ZoneResolver(BaseResolver):
    def __init__(self, answer_ip: str):
        self.answer_ip = answer_ip

    def resolve(self, request, handler):  # noqa: ANN001, ANN201
        reply = request.reply()
        qname = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        if qname.startswith("servfail."):
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if qname.startswith("nx"):
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(
                RR(
                    "test.",
                    QTYPE.SOA,
                    ttl=120,
                    rdata=SOA("ns.test.", "admin.test.", (1, 3600, 600, 86400, 60)),
                )
            )
            return reply
        if qname == "big.test." and qtype == "TXT":
            for i in range(20):
                reply.add_answer(
                    RR(qname, QTYPE.TXT, ttl=300, rdata=TXT(f"record {i} " + "x" * 40))
                )
            return reply
        ttl = 1 if qname.startswith("ttl1.") else 300
        if qtype in ("A", "ANY"):
            reply.add_answer(RR(qname, QTYPE.A, ttl=ttl, rdata=A(SAFE.get(qname, self.answer_ip))))
        elif qtype == "AAAA":
            reply.add_answer(RR(qname, QTYPE.AAAA, ttl=ttl, rdata=AAAA("2001:db8::1")))
        else:
            reply.add_auth(
                RR(
                    "test.",
                    QTYPE.SOA,
                    ttl=120,
                    rdata=SOA("ns.test.", "admin.test.", (1, 3600, 600, 86400, 60)),
                )
            )
        return reply


class TruncatingHandler(DNSHandler):
    udplen = 512


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--answer-ip", default="192.0.2.1")
    args = parser.parse_args()

    class Quiet:
        def __getattr__(self, name: str):  # noqa: ANN204
            return lambda *a, **k: None

    resolver = ZoneResolver(args.answer_ip)
    for tcp in (False, True):
        server = DNSServer(
            resolver,
            port=args.port,
            address=args.address,
            tcp=tcp,
            handler=TruncatingHandler,
            logger=Quiet(),
        )
        server.start_thread()
    print("READY", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
