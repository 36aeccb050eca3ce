"""The servers a sweep may use, read from the Ansible inventory with their variables resolved.

Every host of group ``canon_servers`` is one abra server. The variables the driver needs
(``canon_server``, ``canon_state_dir``, ``canon_enrolled``, ...) are templated the way a play
would see them, so the inventory stays the one place that says which recipes are enrolled.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import yaml
from ansible_collections.coopcloud.canon.plugins.module_utils._docker import DockerClient

from canon import ROOT

# What a server entry must resolve to; the defaults mirror roles/lifecycle/defaults/main.yml.
NEEDED = {
    "canon_server": "default",
    "canon_state_dir": os.path.expanduser("~/.local/state/coopcloud-canon"),
    "canon_abra_dir": os.path.expanduser("~/.abra"),
    "canon_docker_bin": "docker",
    "canon_enrolled": [],
    "canon_sweep_cap": 2,
    "canon_docker_host": "",
    "canon_docker_context": "",
    "canon_min_free_disk_gb": 2.0,
    "canon_forge_url": "",
    "canon_forge_token_file": "",
    "canon_forge_owner": "",
    "canon_forge_git_root": "",
    "canon_abra_bin": "abra",
    "canon_proxy_url": "",
    "canon_probe_image": "busybox:stable",
}


class InventoryError(Exception):
    pass


@dataclass
class Server:
    host: str              # the inventory host (a play targets it with canon_hosts)
    name: str              # the abra server name
    state_dir: str
    abra_dir: str
    docker_bin: str
    docker_host: str
    cap: int
    min_free_disk_gb: float
    enrolled: list = field(default_factory=list)
    vars: dict = field(default_factory=dict)      # every resolved variable above, by name
    docker_context: str = ""   # the docker context of this abra server (abra names it after the server)

    def docker(self, timeout: float = 60) -> DockerClient:
        """The client of the driver's own docker calls: they reach this server's engine (its
        ``docker_host``, else its context, either winning over a DOCKER_HOST of the driver's)."""
        return DockerClient(binary=self.docker_bin, timeout=timeout, context=self.docker_context,
                            host=self.docker_host)


def default_inventory() -> str:
    return os.path.join(ROOT, "inventory", "bench", "hosts.yml")


def resolved_hosts(inventory: str | None, pattern: str) -> list:
    """``(host name, hostvars, template)`` for each host ``pattern`` matches, in inventory order.

    The one place the driver reads the inventory through Ansible: ``template`` resolves a
    variable the way a play targeting that host would see it.
    """
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    path = inventory or default_inventory()
    if not os.path.exists(path):
        raise InventoryError("inventory %s does not exist" % path)
    loader = DataLoader()
    inv = InventoryManager(loader=loader, sources=[path])
    manager = VariableManager(loader=loader, inventory=inv)
    out = []
    for host in inv.get_hosts(pattern=pattern):
        hostvars = manager.get_vars(host=host, include_hostvars=False)
        out.append((host.name, hostvars, Templar(loader=loader, variables=hostvars).template))
    return out


def load_servers(inventory: str | None = None, group: str = "canon_servers") -> list:
    """The servers in ``group``, in inventory order, with their variables templated."""
    hosts = resolved_hosts(inventory, group)
    if not hosts:
        raise InventoryError("inventory %s has no hosts in group %s" % (inventory or default_inventory(), group))
    servers = []
    for name, hostvars, template in hosts:
        values = {}
        for key, default in NEEDED.items():
            raw = hostvars.get(key, default)
            try:
                values[key] = template(raw)
            except Exception as exc:  # an undefined variable in the inventory
                raise InventoryError("%s: cannot resolve %s: %s" % (name, key, exc)) from None
        servers.append(Server(
            host=name, name=str(values["canon_server"]), state_dir=str(values["canon_state_dir"]),
            abra_dir=str(values["canon_abra_dir"]), docker_bin=str(values["canon_docker_bin"]),
            docker_host=str(values["canon_docker_host"] or ""), cap=int(values["canon_sweep_cap"]),
            min_free_disk_gb=float(values["canon_min_free_disk_gb"]),
            enrolled=normalise_enrolled(values["canon_enrolled"], name), vars=values,
            docker_context=str(values["canon_docker_context"] or "")))
    return servers


def normalise_enrolled(entries, host: str) -> list:
    """``canon_enrolled`` entries are a recipe name or ``{recipe, warm, settings, warm_drift}``."""
    out = []
    for entry in entries or []:
        if isinstance(entry, str):
            entry = {"recipe": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("recipe"), str):
            raise InventoryError("%s: canon_enrolled entries are recipe names or dicts with a recipe: %r" % (host, entry))
        out.append({"recipe": entry["recipe"], "warm": bool(entry.get("warm", True)),
                    "settings": dict(entry.get("settings") or {}),
                    "warm_drift": bool(entry.get("warm_drift", True))})
    return out


def recipe_settings(recipe: str) -> dict:
    """The recipe role's settings as data (``canon_recipe_settings``), or {} without a role."""
    path = os.path.join(ROOT, "roles", recipe.replace("-", "_"), "defaults", "main.yml")
    if not os.path.exists(path):
        return {}
    with open(path) as fh:
        data = yaml.safe_load(fh) or {}
    return dict(data.get("canon_recipe_settings") or {})


def is_heavy(recipe: str, overrides: dict | None = None) -> bool:
    settings = dict(recipe_settings(recipe))
    settings.update(overrides or {})
    return bool(settings.get("heavy"))
