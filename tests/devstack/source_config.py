"""A source's own settings as the template gives them on the local stack, to build it without the whole stack."""

from __future__ import annotations

from devstack.resources import LOCAL_PARAMETERS, Resolver, load_template
from devstack.vendors import vendor
from webhook_adapter.settings import env_prefix

__all__ = ["source_environment"]


def source_environment(name: str) -> dict[str, str]:
    """The source's own variables as the template sets them on the local stack (its secret id stands in)."""
    template = load_template()
    kit = vendor(name)
    resolver = Resolver(template, {**LOCAL_PARAMETERS, kit.secret_parameter: "secret-id"})
    variables = template["Resources"]["ReceiveFunction"]["Properties"]["Environment"]["Variables"]
    prefix = f"{env_prefix(name)}_"
    return {key: str(resolver.resolve(value)) for key, value in variables.items() if key.startswith(prefix)}
