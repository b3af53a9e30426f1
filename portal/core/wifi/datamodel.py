"""Where a router keeps its SSIDs and passphrases: TR-098 or TR-181, as it reports.

Input is a flat {parameter path: value} view of what the ACS knows of the device.
"""

from __future__ import annotations

import re

from portal.core.wifi.acs import WifiNetwork

TR098_SSID = re.compile(r"^InternetGatewayDevice\.LANDevice\.1\.WLANConfiguration\.(\d+)\.SSID$")
TR181_SSID = re.compile(r"^Device\.WiFi\.SSID\.(\d+)\.SSID$")
TR098_USERNAME = ("InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1."
                  "WANPPPConnection.1.Username")
TR181_USERNAME = "Device.PPP.Interface.1.Username"


def band_of(text: str) -> str | None:
    t = text.replace(" ", "").lower()
    if t.startswith("2.4"):
        return "2.4"
    if t.startswith("5"):
        return "5"
    return None


def data_model(params: dict[str, str]) -> str:
    return "tr181" if any(p.startswith("Device.") for p in params) else "tr098"


def networks(params: dict[str, str]) -> list[WifiNetwork]:
    """The first (lowest-numbered) network of each band, 2.4 GHz first."""
    found = _tr181(params) if data_model(params) == "tr181" else _tr098(params)
    first: dict[str, WifiNetwork] = {}
    for net in found:
        first.setdefault(net.band, net)
    return [first[b] for b in ("2.4", "5") if b in first]


def _tr098(params: dict[str, str]) -> list[WifiNetwork]:
    out = []
    for n, path in _matches(TR098_SSID, params):
        base = path[: -len("SSID")]
        band = next((band_of(v) for k, v in params.items()
                     if k.startswith(base) and k.count(".") == base.count(".")
                     and k.endswith("OperatingFrequencyBand") and band_of(v)), None)
        # Without a reported band, the common layout: instances 1-4 are 2.4 GHz, 5-8 are 5 GHz.
        band = band or ("2.4" if n <= 4 else "5")
        passphrase = next((base + p for p in ("PreSharedKey.1.KeyPassphrase", "KeyPassphrase",
                                              "PreSharedKey.1.PreSharedKey")
                           if base + p in params), None)
        out.append(WifiNetwork(band, params[path], path, passphrase))
    return out


def _tr181(params: dict[str, str]) -> list[WifiNetwork]:
    out = []
    for n, path in _matches(TR181_SSID, params):
        ssid_obj = f"Device.WiFi.SSID.{n}"
        radio = params.get(f"{ssid_obj}.LowerLayers", "").rstrip(".").split(",")[0].strip()
        band = band_of(params.get(f"{radio}.OperatingFrequencyBand", "")) if radio else None
        band = band or ("2.4" if n == 1 else "5" if n == 2 else None)
        if band is None:
            continue
        ap = next((k[: -len(".SSIDReference")] for k, v in params.items()
                   if k.startswith("Device.WiFi.AccessPoint.") and k.endswith(".SSIDReference")
                   and v.rstrip(".") == ssid_obj), f"Device.WiFi.AccessPoint.{n}")
        passphrase = f"{ap}.Security.KeyPassphrase"
        out.append(WifiNetwork(band, params[path], path,
                               passphrase if passphrase in params else None))
    return out


def _matches(pattern: re.Pattern[str], params: dict[str, str]) -> list[tuple[int, str]]:
    return sorted((int(m.group(1)), p) for p in params if (m := pattern.match(p)))
