"""Category blocklists: parse published lists, build a compact shared store, update it safely."""

from blocklists.settings import BlocklistSettings
from blocklists.store import DomainStore
from blocklists.update import UpdateReport, current_generation, update

__all__ = ["BlocklistSettings", "DomainStore", "UpdateReport", "current_generation", "update"]
