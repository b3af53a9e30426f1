"""The one exception the shaper raises."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FailedOperation:
    operation: str  # e.g. "add class on eth1 (download)"
    address: str | None
    errno: int
    message: str

    def __str__(self) -> str:
        who = f" for {self.address}" if self.address else ""
        return f"{self.operation}{who}: {self.message} (errno {self.errno})"


class ShaperError(Exception):
    """A netlink operation failed; ``failures`` names each operation and address.

    The tree is left in a state the next ``reconcile`` reads and repairs.
    """

    def __init__(self, failures: list[FailedOperation]) -> None:
        self.failures = failures
        shown = "; ".join(str(f) for f in failures[:5])
        more = f" (+{len(failures) - 5} more)" if len(failures) > 5 else ""
        super().__init__(shown + more)

    @property
    def operation(self) -> str:
        return self.failures[0].operation

    @property
    def address(self) -> str | None:
        return self.failures[0].address
