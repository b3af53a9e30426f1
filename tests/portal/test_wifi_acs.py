"""WiFi rules without a portal: validation, TR-098/TR-181 paths, the GenieACS client
against the NBI emulator (online, offline, fault, down, slow, bad credentials)."""

from __future__ import annotations

import time

import pytest

from portal.core.wifi import datamodel
from portal.core.wifi.acs import AcsError, AcsUnavailable
from portal.core.wifi.genieacs import GenieAcsClient
from portal.core.wifi.service import check_passphrase, check_ssid
from portal.demo.nbi_emulator import FakeDevice, GenieAcsEmulator, tr098_params, tr181_params
from portal.errors import PortalError
from tests.support.portal import free_port


@pytest.mark.parametrize("ssid", ["a", "x" * 32, "Café Wi-Fi", "é" * 16, "日本" * 5 + "ab",
                                  "with space", "<script>"])
def test_good_ssids(ssid: str):
    assert check_ssid(ssid) == ssid


@pytest.mark.parametrize("ssid", ["", "x" * 33, "é" * 17, "😀" * 9, "tab\there", "nl\n", None,
                                  42])
def test_bad_ssids(ssid: object):
    with pytest.raises(PortalError) as caught:
        check_ssid(ssid)
    assert caught.value.code == "invalid_ssid"
    assert caught.value.status == 422


@pytest.mark.parametrize("passphrase", ["12345678", "x" * 63, "with spaces ok", "~!@#$%^&*()"])
def test_good_passphrases(passphrase: str):
    assert check_passphrase(passphrase) == passphrase


@pytest.mark.parametrize("passphrase", ["1234567", "x" * 64, "pässword1", "emoji😀pass",
                                        "tab\tpass1", "", None, 12345678])
def test_bad_passphrases(passphrase: object):
    with pytest.raises(PortalError) as caught:
        check_passphrase(passphrase)
    assert caught.value.code == "invalid_passphrase"
    # The message never echoes what was typed.
    assert str(passphrase) not in caught.value.message or passphrase in ("", None)


def test_tr098_paths_and_bands():
    nets = datamodel.networks(tr098_params("u"))
    assert [(n.band, n.ssid) for n in nets] == [("2.4", "Home-2G"), ("5", "Home-5G")]
    w = "InternetGatewayDevice.LANDevice.1.WLANConfiguration"
    assert nets[0].ssid_path == f"{w}.1.SSID"
    assert nets[0].passphrase_path == f"{w}.1.PreSharedKey.1.KeyPassphrase"
    assert nets[1].passphrase_path == f"{w}.5.PreSharedKey.1.KeyPassphrase"


def test_tr098_devices_reporting_only_presharedkey():
    nets = datamodel.networks(tr098_params("u", key_param="PreSharedKey.1.PreSharedKey"))
    assert nets[0].passphrase_path.endswith("WLANConfiguration.1.PreSharedKey.1.PreSharedKey")


def test_tr098_reported_band_wins_over_instance_number():
    w = "InternetGatewayDevice.LANDevice.1.WLANConfiguration"
    nets = datamodel.networks({f"{w}.1.SSID": "five", f"{w}.1.OperatingFrequencyBand": "5GHz",
                               f"{w}.2.SSID": "two", f"{w}.2.OperatingFrequencyBand": "2.4GHz"})
    assert [(n.band, n.ssid) for n in nets] == [("2.4", "two"), ("5", "five")]
    assert nets[0].passphrase_path is None


def test_tr181_bands_from_radios_and_access_points():
    nets = datamodel.networks(tr181_params("u"))
    assert datamodel.data_model(tr181_params("u")) == "tr181"
    by_band = {n.band: n for n in nets}
    assert by_band["2.4"].ssid_path == "Device.WiFi.SSID.2.SSID"
    assert by_band["2.4"].passphrase_path == "Device.WiFi.AccessPoint.1.Security.KeyPassphrase"
    assert by_band["5"].ssid_path == "Device.WiFi.SSID.1.SSID"
    assert by_band["5"].passphrase_path == "Device.WiFi.AccessPoint.2.Security.KeyPassphrase"


@pytest.fixture
def acs():
    with GenieAcsEmulator() as emulator:
        emulator.add_device(FakeDevice("00E0FC-HG8245H-SN1", tr098_params("alice"),
                                       tags=["alice"]))
        emulator.add_device(FakeDevice("AX-SN2", tr181_params("bob"), tags=["bob"],
                                       online=False, serial="SN2"))
        yield emulator


async def test_find_by_tag_and_by_reported_username(acs: GenieAcsEmulator):
    client = GenieAcsClient(acs.url)
    by_tag = await client.find_device("alice", "tag")
    assert by_tag is not None and by_tag.id == "00E0FC-HG8245H-SN1"
    assert by_tag.model == "HG8245H" and by_tag.serial == "SN0001"
    assert by_tag.last_contact is not None and by_tag.data_model == "tr098"
    by_name = await client.find_device("bob", "username")
    assert by_name is not None and by_name.id == "AX-SN2" and by_name.data_model == "tr181"
    assert await client.find_device("carol", "tag") is None
    assert await client.find_device("alice", "username") is not None
    # The device query asks only for what the tab shows.
    assert "projection" in acs.requests[0].query


async def test_online_task_is_done_at_once(acs: GenieAcsEmulator):
    client = GenieAcsClient(acs.url)
    path = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID"
    result = await client.set_parameters("00E0FC-HG8245H-SN1", [(path, "New")])
    assert result.state == "done" and result.task_id
    assert acs.devices["00E0FC-HG8245H-SN1"].params[path] == "New"
    post = [r for r in acs.requests if r.method == "POST"][0]
    assert "connection_request" in post.query
    assert acs.posted_tasks()[0]["name"] == "setParameterValues"


async def test_offline_task_stays_pending_until_the_router_connects(acs: GenieAcsEmulator):
    client = GenieAcsClient(acs.url)
    result = await client.reboot("AX-SN2")
    assert result.state == "pending" and result.offline
    assert "next connects" in result.message
    assert (await client.task_state("AX-SN2", result.task_id)).state == "pending"
    acs.connect("AX-SN2")
    assert (await client.task_state("AX-SN2", result.task_id)).state == "done"
    assert acs.devices["AX-SN2"].reboots == 1


async def test_faulted_task(acs: GenieAcsEmulator):
    acs.fault_next = True
    result = await GenieAcsClient(acs.url).set_parameters("00E0FC-HG8245H-SN1",
                                                          [("x.SSID", "y")])
    assert result.state == "faulted"
    assert "cwmp.9007" in result.message


async def test_acs_down_is_unavailable():
    with pytest.raises(AcsUnavailable, match="cannot be reached"):
        await GenieAcsClient(f"http://127.0.0.1:{free_port()}").find_device("alice", "tag")


async def test_slow_acs_times_out(acs: GenieAcsEmulator):
    acs.delay_s = 1.0
    started = time.monotonic()
    with pytest.raises(AcsUnavailable, match="in time"):
        await GenieAcsClient(acs.url, timeout_s=0.3).reboot("00E0FC-HG8245H-SN1")
    assert time.monotonic() - started < 0.9


async def test_credentials():
    with GenieAcsEmulator(credentials=("nbi", "s3cret")) as acs:
        acs.add_device(FakeDevice("D1", tr098_params("alice"), tags=["alice"]))
        assert await GenieAcsClient(acs.url, "nbi", "s3cret").find_device("alice", "tag")
        with pytest.raises(AcsError, match="credentials"):
            await GenieAcsClient(acs.url, "nbi", "wrong").find_device("alice", "tag")
