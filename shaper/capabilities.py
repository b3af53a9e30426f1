"""Which qdiscs and classifiers this kernel really has, found by trying them.

Module lists and kernel configs lie (modules can be missing, built in, or
blacklisted), so we create each kind on a scratch veth pair in the target
namespace and see whether the kernel knows it: an unknown kind is ENOENT,
a known kind with our empty options is at worst EINVAL.
"""

from __future__ import annotations

import errno
import functools
import os
from dataclasses import dataclass

from shaper import links
from shaper.netlink import NLM_F_CREATE, NLM_F_REPLACE, NetlinkSocket, Request, attr_str
from shaper.tc import RTM_NEWQDISC, RTM_NEWTFILTER, TC_H_ROOT, TCA_KIND, TCMSG, filter_info

QDISCS = (
    "fq_codel",
    "cake",
    "fq",
    "sfq",
    "htb",
    "hfsc",
    "tbf",
    "drr",
    "prio",
    "pfifo",
    "bfifo",
    "netem",
)
CLASSIFIERS = ("u32", "flower", "matchall", "fw", "basic", "bpf")
ETH_P_ALL = 0x0003
CLSACT_INGRESS = 0xFFFFFFF2
CLSACT = 0xFFFF0000


@dataclass(frozen=True)
class Capabilities:
    qdiscs: frozenset[str]
    classifiers: frozenset[str]

    def leaf_kind(self) -> str:
        """The best per-subscriber leaf this kernel offers."""
        for kind in ("fq_codel", "bfifo", "pfifo"):
            if kind in self.qdiscs:
                return kind
        raise RuntimeError("kernel has neither fq_codel nor a fifo qdisc")


def _known(nl: NetlinkSocket, request: Request) -> bool:
    failures = nl.execute([request])
    return not failures or failures[0].errno not in (errno.ENOENT, errno.EOPNOTSUPP)


@functools.cache
def detect(netns: str | None = None) -> Capabilities:
    """Probe the kernel of ``netns`` (cached per namespace for the process)."""
    nl = NetlinkSocket(netns)
    name, peer = f"ispcap{os.getpid() % 100000}", f"ispcaq{os.getpid() % 100000}"
    try:
        links.add_veth(nl, name, peer)
        index = links.ifindex(nl, name)
        assert index is not None
        try:
            qdiscs = {
                kind
                for kind in QDISCS
                if _known(
                    nl,
                    Request(
                        RTM_NEWQDISC,
                        NLM_F_CREATE | NLM_F_REPLACE,
                        TCMSG.pack(0, index, 0, TC_H_ROOT, 0) + attr_str(TCA_KIND, kind),
                        f"probe qdisc {kind}",
                    ),
                )
            }
            clsact = Request(
                RTM_NEWQDISC,
                NLM_F_CREATE,
                TCMSG.pack(0, index, CLSACT, 0xFFFFFFF1, 0) + attr_str(TCA_KIND, "clsact"),
                "add clsact",
            )
            classifiers: set[str] = set()
            if not nl.execute([clsact]):
                classifiers = {
                    kind
                    for prio, kind in enumerate(CLASSIFIERS, start=1)
                    if _known(
                        nl,
                        Request(
                            RTM_NEWTFILTER,
                            NLM_F_CREATE,
                            TCMSG.pack(0, index, 0, CLSACT_INGRESS, filter_info(prio, ETH_P_ALL))
                            + attr_str(TCA_KIND, kind),
                            f"probe classifier {kind}",
                        ),
                    )
                }
        finally:
            links.delete_link(nl, index)
    finally:
        nl.close()
    return Capabilities(frozenset(qdiscs), frozenset(classifiers))
