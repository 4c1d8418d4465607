"""CRM enrichment: a customer's profile, merged over the configured backends and cached on the customer row.

Backends are asked in YAML order (earlier ones win on conflicting fields) only when the cached
profile is older than the smallest ``cache_ttl_s`` of the configured backends, so a CRM is not
called on every message. A backend that fails or times out is logged and skipped: the
customer is answered with what the others know.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from gateway.components import CrmBackend
from gateway.conversation import CustomerProfile, CustomerView
from gateway.db.store import CustomerRow, WriteSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfiguredCrm:
    backend: CrmBackend
    cache_ttl_s: float


class Enricher:
    """Looks up and caches customer profiles for the pipeline."""

    def __init__(self, backends: Sequence[ConfiguredCrm], *, timeout_s: float = 3.0) -> None:
        self.backends = list(backends)
        self.timeout_s = timeout_s
        ttl = min((b.cache_ttl_s for b in self.backends), default=0.0)
        self.ttl = timedelta(seconds=ttl)

    async def profile(self, customer: CustomerRow, view: CustomerView, write_set: WriteSet, now: datetime) -> CustomerProfile:
        """The customer's profile: the cached one while fresh, else looked up and queued for writing."""
        cached = profile_from_json(customer.profile)
        if not self.backends:
            return cached
        fetched = customer.profile_fetched_at
        if customer.profile is not None and fetched is not None and now - fetched < self.ttl:
            return cached
        found: list[CustomerProfile] = []
        for configured in self.backends:
            backend = configured.backend
            try:
                profile = await asyncio.wait_for(backend.lookup(view), self.timeout_s)
            except Exception:  # noqa: BLE001 - one CRM down must not silence the bot
                log.exception("CRM backend '%s' failed to look up customer %s; skipped", backend.name, customer.id)
                continue
            if profile is not None:
                found.append(profile)
        merged = merge_profiles(found)
        stored = profile_to_json(merged)
        if customer.is_new:
            for row in write_set.customers:
                if row["id"] == customer.id:
                    row.update(profile=stored, profile_fetched_at=now)
        else:
            write_set.profile_updates.append({"b_id": customer.id, "profile": stored, "profile_fetched_at": now})
        customer.profile, customer.profile_fetched_at = stored, now
        return merged


def merge_profiles(profiles: Sequence[CustomerProfile]) -> CustomerProfile:
    """Merge in priority order: the first profile that sets a field wins."""
    if not profiles:
        return CustomerProfile()
    attributes: dict[str, Any] = {}
    for profile in reversed(profiles):
        attributes.update(profile.attributes)
    return CustomerProfile(
        display_name=next((p.display_name for p in profiles if p.display_name), None),
        language=next((p.language for p in profiles if p.language), None),
        attributes=attributes,
        source=",".join(p.source for p in profiles if p.source) or None,
    )


def profile_to_json(profile: CustomerProfile) -> dict[str, Any]:
    return {
        "display_name": profile.display_name,
        "language": profile.language,
        "attributes": dict(profile.attributes),
        "source": profile.source,
    }


def profile_from_json(data: Mapping[str, Any] | None) -> CustomerProfile:
    if not data:
        return CustomerProfile()
    return CustomerProfile(
        display_name=data.get("display_name"),
        language=data.get("language"),
        attributes=dict(data.get("attributes") or {}),
        source=data.get("source"),
    )
