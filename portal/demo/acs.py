"""The demo's ACS: an NBI emulator with a router for every demo subscriber.

`ispedge demo` has no real GenieACS, and a WiFi tab hidden in the demo shows
nothing of the feature. Every subscriber gets a router (TR-098 and TR-181 in
turn, so both data models are seen), the demo resellers point their ACS at the
emulator, and the WiFi tab then reads, changes and reboots like a real one.
"""

from __future__ import annotations

from portal.core.wifi import service
from portal.demo.nbi_emulator import FakeDevice, GenieAcsEmulator, tr098_params, tr181_params
from portal.store.models import Reseller, Subscriber


async def start(resellers: tuple[str, ...] = ("demo", "cedar")) -> GenieAcsEmulator:
    """Start the emulator (a daemon thread) and point the resellers at it.

    The URL changes every run (a free port), so the ACS setting is rewritten each time.
    """
    emulator = GenieAcsEmulator()
    wanted = await Reseller.filter(name__in=resellers).values_list("id", flat=True)
    subscribers = await Subscriber.filter(reseller_id__in=list(wanted)).order_by("id")
    for i, sub in enumerate(subscribers):
        home = sub.username.split("@", 1)[0].rstrip("0123456789").title() or "Home"
        params = (tr098_params if i % 2 == 0 else tr181_params)(
            sub.username, ssid24=f"{home}-2G", ssid5=f"{home}-5G")
        emulator.add_device(FakeDevice(id=f"00E0FC-DEMO-{sub.id:06d}", params=params,
                                       serial=f"DEMO{sub.id:06d}"))
    emulator.start()
    for name in resellers:
        await service.configure(name, emulator.url, match="username", timeout_ms=3000)
    return emulator
