"""What the portal needs from an ACS, as plain values: find a router, queue tasks.

Another ACS (a vendor's) is added by writing one more class with these methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

Match = Literal["tag", "username"]
TaskState = Literal["pending", "done", "faulted"]


@dataclass(frozen=True)
class WifiNetwork:
    band: str  # "2.4" | "5"
    ssid: str
    ssid_path: str
    passphrase_path: str | None


@dataclass(frozen=True)
class Device:
    id: str
    manufacturer: str
    model: str
    serial: str
    last_contact: datetime | None
    data_model: str  # "tr098" | "tr181"
    networks: tuple[WifiNetwork, ...] = field(default=())

    def network(self, band: str) -> WifiNetwork | None:
        return next((n for n in self.networks if n.band == band), None)


@dataclass(frozen=True)
class TaskResult:
    task_id: str | None
    state: TaskState
    # The router did not take the task now (offline or not answering the
    # connection request); the ACS keeps it for the router's next contact.
    offline: bool = False
    message: str = ""  # English (stored as the task's `message`)
    # The same, stable: a code of portal.core.wifi.messages and its values
    message_code: str = ""
    message_params: dict[str, str] = field(default_factory=dict)


class AcsUnavailable(Exception):
    """The ACS could not be reached or did not answer in time: nothing is known to be done."""


class AcsError(Exception):
    """The ACS answered, but refused or did not understand the request."""


class AcsClient(Protocol):
    async def find_device(self, username: str, match: Match) -> Device | None: ...

    async def set_parameters(self, device_id: str,
                             values: list[tuple[str, str]]) -> TaskResult: ...

    async def reboot(self, device_id: str) -> TaskResult: ...

    async def task_state(self, device_id: str, task_id: str) -> TaskResult: ...
