"""A three-namespace lab: subscriber ── edge (the shaper) ── internet.

    sub  vs0 10.0.0.5, .6, .7 /24      2001:db8:0:1::5/64
         │
    edge vd  10.0.0.1/24  (download shaped here, egress towards subscribers)
         vu  192.0.2.1/24 (upload shaped here, egress towards the internet)
         │
    inet vi0 192.0.2.2/24              2001:db8:ff::2/64, iperf3 servers

Names carry the pid so parallel runs never collide; ``close`` deletes every
namespace (and with it every veth and iperf3 process inside).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field

SUB_ADDRESSES = ("10.0.0.5", "10.0.0.6", "10.0.0.7")
SUB_PREFIX6 = "2001:db8:0:1::/64"
SUB_ADDRESS6 = "2001:db8:0:1::5"
INET_ADDRESS = "192.0.2.2"
INET_ADDRESS6 = "2001:db8:ff::2"
PORTS = (5201, 5202)


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@dataclass
class Lab:
    iperf3: str
    tag: str = field(default_factory=lambda: str(os.getpid()))
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def sub(self) -> str:
        return f"isp-sub-{self.tag}"

    @property
    def edge(self) -> str:
        return f"isp-edge-{self.tag}"

    @property
    def inet(self) -> str:
        return f"isp-inet-{self.tag}"

    def ns(self, netns: str, *args: str) -> str:
        return run("ip", "netns", "exec", netns, *args)

    def open(self) -> None:
        for netns in (self.sub, self.edge, self.inet):
            run("ip", "netns", "add", netns)
        run(
            "ip",
            "-n",
            self.sub,
            "link",
            "add",
            "vs0",
            "type",
            "veth",
            "peer",
            "name",
            "vd",
            "netns",
            self.edge,
        )
        run(
            "ip",
            "-n",
            self.inet,
            "link",
            "add",
            "vi0",
            "type",
            "veth",
            "peer",
            "name",
            "vu",
            "netns",
            self.edge,
        )
        for netns, dev in (
            (self.sub, "vs0"),
            (self.edge, "vd"),
            (self.edge, "vu"),
            (self.inet, "vi0"),
        ):
            run("ip", "-n", netns, "link", "set", dev, "up")
            run("ip", "-n", netns, "link", "set", "lo", "up")
        # Senders put MTU-sized packets on the wire, as a real access network
        # does: with veth's default TSO a 64 KB segment crosses HTB as one packet,
        # 105 ms at 5 Mbit/s, so any 2 s window of received bytes is off by up to 5%.
        for netns, dev in ((self.inet, "vi0"), (self.sub, "vs0")):
            run("ip", "-n", netns, "link", "set", "dev", dev, "gso_max_segs", "1")
        for address in SUB_ADDRESSES:
            run("ip", "-n", self.sub, "addr", "add", f"{address}/24", "dev", "vs0")
        run("ip", "-n", self.sub, "addr", "add", f"{SUB_ADDRESS6}/64", "dev", "vs0", "nodad")
        run("ip", "-n", self.sub, "route", "add", "default", "via", "10.0.0.1")
        run("ip", "-n", self.sub, "-6", "route", "add", "default", "via", "2001:db8:0:1::1")
        run("ip", "-n", self.edge, "addr", "add", "10.0.0.1/24", "dev", "vd")
        run("ip", "-n", self.edge, "addr", "add", "192.0.2.1/24", "dev", "vu")
        run("ip", "-n", self.edge, "addr", "add", "2001:db8:0:1::1/64", "dev", "vd", "nodad")
        run("ip", "-n", self.edge, "addr", "add", "2001:db8:ff::1/64", "dev", "vu", "nodad")
        self.ns(self.edge, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.ns(self.edge, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        run("ip", "-n", self.inet, "addr", "add", f"{INET_ADDRESS}/24", "dev", "vi0")
        run("ip", "-n", self.inet, "addr", "add", f"{INET_ADDRESS6}/64", "dev", "vi0", "nodad")
        run("ip", "-n", self.inet, "route", "add", "10.0.0.0/24", "via", "192.0.2.1")
        run("ip", "-n", self.inet, "-6", "route", "add", "2001:db8:0::/48", "via", "2001:db8:ff::1")
        for port in PORTS:
            self.servers.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", self.inet, self.iperf3, "-s", "-p", str(port)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        self._wait_for_servers()

    def _wait_for_servers(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            listening = self.ns(self.inet, "ss", "-Hltn")
            if all(f":{port} " in listening for port in PORTS):
                return
            time.sleep(0.05)
        raise RuntimeError("iperf3 servers did not start")

    def close(self) -> None:
        for server in self.servers:
            server.kill()
            server.wait()
        for netns in (self.sub, self.edge, self.inet):
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)

    def iperf(
        self,
        *,
        download: bool,
        bind: str = SUB_ADDRESSES[0],
        seconds: float = 4,
        port: int = PORTS[0],
    ) -> subprocess.Popen[str]:
        """Start a TCP transfer from the subscriber namespace; see ``result``.

        4 s by default: at 5 Mbit/s a leaf queue (>= 128 KiB) still holds ~0.2 s of
        data when iperf3 stops counting, ~10% of a 2 s transfer but ~5% of 4 s.
        """
        target = INET_ADDRESS6 if ":" in bind else INET_ADDRESS
        args = [
            "ip",
            "netns",
            "exec",
            self.sub,
            self.iperf3,
            "-c",
            target,
            "-B",
            bind,
            "-p",
            str(port),
        ]
        args += ["-t", str(seconds), "-J"]
        if download:
            args.append("-R")
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def measure(
        self, *, download: bool, bind: str = SUB_ADDRESSES[0], seconds: float = 4
    ) -> Transfer:
        return result(self.iperf(download=download, bind=bind, seconds=seconds))


@dataclass(frozen=True)
class Transfer:
    goodput_bps: float  # payload bits per second, as the receiver saw them
    received_bytes: int


def result(proc: subprocess.Popen[str]) -> Transfer:
    out, err = proc.communicate(timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"iperf3 failed: {out[-500:]} {err[-500:]}")
    summary = json.loads(out)["end"]["sum_received"]
    return Transfer(summary["bits_per_second"], summary["bytes"])
