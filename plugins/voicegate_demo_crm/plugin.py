"""Registers the ``demo`` CRM backend (entry point ``demo_crm``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from gateway.components import ComponentSpec, CrmBackend, GatewayContext, PluginSettings, Register
from gateway.conversation import CustomerProfile, CustomerView
from gateway.hookspecs import hookimpl

from voicegate_demo_crm.directory import Directory, load_directory, to_profile


class DemoCrmSettings(PluginSettings):
    # Path of the customers file, relative to the gateway YAML's folder.
    customers: str = Field(default="customers.yaml", min_length=1)


class DemoCrm:
    """Profiles from a YAML file, matched on the customer's channel identities."""

    def __init__(self, directory: Directory, *, name: str = "demo") -> None:
        self.name = name
        self.directory = directory

    @classmethod
    def create(cls, settings: DemoCrmSettings, context: GatewayContext) -> "DemoCrm":
        path = Path(settings.customers)
        if not path.is_absolute():
            path = Path(context.config_dir) / path
        return cls(load_directory(path))  # read once at start-up: a bad file stops the gateway early

    async def lookup(self, customer: CustomerView) -> CustomerProfile | None:
        entry = self.directory.match(customer.identities)
        return to_profile(entry, self.name) if entry is not None else None


@hookimpl
def register_crm_backends(register: Register[CrmBackend]) -> None:
    register(ComponentSpec(name="demo", factory=DemoCrm.create, settings_model=DemoCrmSettings,
                           description="customer profiles from customers.yaml"))
