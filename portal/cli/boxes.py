"""`ispedge nas add|list|set|remove` and `ispedge box list` (issue 16: edge boxes)."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict

from portal.cli.registry import act, command, emit, with_db
from portal.config import Config


@command("nas add")
async def nas_add(args: argparse.Namespace, config: Config) -> int:
    from portal.core import nas
    return await act(
        config, lambda: nas.add(args.address, args.secret, args.coa_port, args.profile, args.box),
        lambda row: f"NAS {row.address} added (CoA port {row.coa_port}, profile {row.profile}, "
                    f"box {row.box or '-'})")


@command("nas set")
async def nas_set(args: argparse.Namespace, config: Config) -> int:
    from portal.core import nas
    return await act(
        config, lambda: nas.update(args.address, secret=args.secret, coa_port=args.coa_port,
                                   profile=args.profile, box=args.box, clear_box=args.no_box),
        lambda row: f"NAS {row.address}: CoA port {row.coa_port}, profile {row.profile}, "
                    f"box {row.box or '-'}")


@command("nas remove")
async def nas_remove(args: argparse.Namespace, config: Config) -> int:
    from portal.core import nas
    return await act(config, lambda: nas.remove(args.address), f"NAS {args.address} removed")


@command("nas list")
async def nas_list(args: argparse.Namespace, config: Config) -> int:
    from portal.core import nas
    from portal.enforcer import ownership
    from portal.store import boxes

    async def run() -> int:
        live = ownership.live_boxes(await boxes.enforcers_seen(), None, time.time())
        rows = []
        for n in await nas.list_nas():
            owner = ownership.nas_owner(n.box, live)
            rows.append({"address": n.address, "coa_port": n.coa_port, "profile": n.profile,
                         "box": n.box or "-", "owner": owner.box or "unowned",
                         # the secret is not printed: `nas set --secret` replaces it
                         })
        emit(rows, args.json)
        if not rows and not args.json:
            print("no NAS: `ispedge nas add ADDRESS --secret S`")
        return 0

    return await with_db(config, run)


@command("box list")
async def box_list(args: argparse.Namespace, config: Config) -> int:
    from portal.enforcer import ownership
    from portal.store import boxes, db

    async def run() -> int:
        now = time.time()
        found = await boxes.all_boxes()
        live = ownership.live_boxes({b.name: b.last_seen for b in found
                                     if b.role == boxes.ENFORCER}, None, now)
        nas_boxes = await boxes.nas_boxes()
        per_nas = {str(r["nasipaddress"]): int(r["n"]) for r in await db.fetch(
            "SELECT nasipaddress, COUNT(*) AS n FROM radacct WHERE acctstoptime IS NULL"
            " GROUP BY nasipaddress")}
        shaped = {str(r["target"]): int(r["n"]) for r in await db.fetch(
            "SELECT target, COUNT(*) AS n FROM enforcement_state"
            " WHERE target LIKE 'shaper:%' GROUP BY target")}
        head = await db.fetch("SELECT MAX(id) AS m FROM change_journal")
        newest = int(head[0]["m"] or 0)
        rows = []
        for b in found:
            row = asdict(b)
            row["shaped_networks"] = ",".join(b.shaped_networks) or "-"
            row["seen_s_ago"] = round(now - b.last_seen, 1)
            row["alive"] = now - b.last_seen <= ownership.BOX_TIMEOUT_S
            if b.role == boxes.ENFORCER:
                nases = [a for a, box in nas_boxes.items()
                         if ownership.nas_owner(box, live).box == b.name]
                row["nases"] = len(nases)
                row["sessions_owned"] = sum(per_nas.get(a, 0) for a in nases)
                row["sessions_shaped"] = shaped.get(ownership.shaper_target(b.name), 0)
                row["journal_lag"] = (None if b.journal_cursor is None
                                      else max(0, newest - b.journal_cursor))
            rows.append(row)
        if args.json:
            emit(rows, True)
        elif not rows:
            print("no box has reported yet (enforcers and resolvers heartbeat every few s)")
        else:
            for r in rows:
                extra = ""
                if r["role"] == boxes.ENFORCER:
                    lag = "-" if r["journal_lag"] is None else f"{r['journal_lag']} rows"
                    extra = (f"  nases={r['nases']} sessions_owned={r['sessions_owned']}"
                             f" sessions_shaped={r['sessions_shaped']} journal_lag={lag}")
                print(f"{r['name']}  {r['role']}  last_seen={r['seen_s_ago']} s ago"
                      f"{'' if r['alive'] else ' (UNOWNED: not seen for 60 s)'}{extra}")
        return 0

    return await with_db(config, run)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    g = sub.add_parser("nas", help="NASes (RADIUS clients), their CoA settings and edge box"
                       ).add_subparsers(dest="action", required=True)
    a = g.add_parser("add", help="add a NAS")
    a.add_argument("address", help="the NAS-IP-Address it sends")
    a.add_argument("--secret", required=True, help="RADIUS shared secret")
    a.add_argument("--coa-port", default="3799")
    a.add_argument("--profile", default="mikrotik",
                   help="vendor rate format: mikrotik, accel-ppp, cisco, generic")
    a.add_argument("--box", help="the edge box whose enforcer sends its CoA (default: none; "
                                 "then owned by the only box)")
    a = g.add_parser("set", help="change a NAS")
    a.add_argument("address")
    a.add_argument("--secret")
    a.add_argument("--coa-port")
    a.add_argument("--profile")
    a.add_argument("--box")
    a.add_argument("--no-box", action="store_true", help="no box any more")
    a = g.add_parser("remove", help="remove a NAS")
    a.add_argument("address")
    a = g.add_parser("list", help="NASes with their box and current owner")
    a.add_argument("--json", action="store_true")

    g = sub.add_parser("box", help="edge boxes (enforcers and resolvers that report in)"
                       ).add_subparsers(dest="action", required=True)
    a = g.add_parser("list", help="last seen, NASes and sessions owned, journal lag")
    a.add_argument("--json", action="store_true")
