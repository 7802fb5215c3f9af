"""The moto backend: every AWS resource is created through boto3 in a moto account.

The program runs exactly as under the echo backend, but each registration
becomes real API calls against moto, and the ids and outputs handed back to
the program are the ones moto assigned. Because the program passes those ids
along (a subnet id into a security group, a group id into RDS), the result is
a deployment whose state can be read back with boto3 like any AWS account:
that is what `coldreach verify`, `coldreach local` and tests/moto rely on.

One module per AWS service registers its handlers by type token (`handles`);
the registry (policies/resource_types.py) lists the types the emulator does not
create, and a test keeps the two in step.

Two ways to reach moto:
- in-process: the caller enters `moto.mock_aws()` itself and builds
  `MotoBackend(region)` inside it, so botocore is patched only as long as the
  caller says;
- a moto server: `MotoBackend(region, endpoint_url="http://127.0.0.1:PORT")`.

A promotion rehearsal (coldreach/rehearsal.py) also changes what is deployed:
`updates` registers a type's in-place update and `deletes` its deletion, only
for the types a promotion changes; any other change is refused by name.

Not everything the program declares is AWS. `random:*` values are generated
here; a `docker-build:index:Image` is not built (no Docker daemon is assumed):
a small placeholder manifest is pushed to the moto ECR repository instead,
so the tag and digest the task definitions use exist there.

What moto cannot hold is rendered, not deployed: a type the registry marks
`emulated=False` (EKS add-ons, access entries, ...) and every Kubernetes object
and provider get the echo backend's ids and outputs, so the program runs on, and
are listed in `rendered` for the report; nothing pretends they exist in moto.
Any other type without a handler fails with `UnsupportedResource`, naming it.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import Any

from boto3.session import Session
from botocore.config import Config
from moto.core.config import default_user_config

from coldreach.runtime.echo import EchoBackend
from coldreach.runtime.emulator.call import Call, NotHeld, Outputs, UnsupportedResource
from coldreach.runtime.invokes import Identity, answer
from coldreach.runtime.model import Resource
from policies.resource_types import TYPES

# moto accepts any credentials; these keep boto3 from searching for real ones.
EMULATOR_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

Handler = Callable[["MotoBackend", Call], tuple[str, Outputs]]

HANDLERS: dict[str, Handler] = {}
"""Type token -> the function that creates it in moto; each service module registers its own."""

Updater = Callable[["MotoBackend", Call, Resource], Outputs]
"""Applies changed inputs to an existing resource in place; returns outputs it changed."""
Deleter = Callable[["MotoBackend", Resource], None]

UPDATERS: dict[str, Updater] = {}
"""Type token -> its in-place update, for the types a promotion updates (coldreach/rehearsal.py)."""
DELETERS: dict[str, Deleter] = {}
"""Type token -> its deletion, for the types a promotion replaces or deletes."""


def handles(token: str) -> Callable[[Handler], Handler]:
    """Registers the decorated function as the emulator handler of `token`."""

    def register(handler: Handler) -> Handler:
        if token in HANDLERS:
            raise ValueError(f"two emulator handlers for {token}")
        HANDLERS[token] = handler
        return handler

    return register


def updates(token: str) -> Callable[[Updater], Updater]:
    def register(updater: Updater) -> Updater:
        if token in UPDATERS:
            raise ValueError(f"two emulator updaters for {token}")
        UPDATERS[token] = updater
        return updater

    return register


def deletes(token: str) -> Callable[[Deleter], Deleter]:
    def register(deleter: Deleter) -> Deleter:
        if token in DELETERS:
            raise ValueError(f"two emulator deleters for {token}")
        DELETERS[token] = deleter
        return deleter

    return register


KUBERNETES = ("kubernetes:", "pulumi:providers:kubernetes")


def rendered_only(type_: str) -> bool:
    """Types moto cannot hold and the registry says so, or Kubernetes' own."""
    known = TYPES.get(type_)
    return type_.startswith(KUBERNETES) or (known is not None and not known.emulated)


class MotoBackend:
    """Creates each resource in moto and answers with moto's ids and outputs."""

    def __init__(
        self, region: str, *, endpoint_url: str | None = None, account: str = "123456789012"
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.identity = Identity(account=account, region=region)
        self._clients: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.stand_in_certificate: str | None = None
        # The program registers resources from several threads; boto3 sessions
        # are not thread-safe to create, clients are safe to share.
        self._session = Session(region_name=region, **EMULATOR_CREDENTIALS)
        # Functions are stored, never run (no Docker): moto's Lambda without containers.
        # Replacing the key (not updating the nested dict) lets `mock_aws` restore it.
        default_user_config["lambda"] = {"use_docker": False}
        self.created: list[tuple[str, str, str]] = []
        """(type, name, id) in creation order, for progress and reports."""
        self.rendered: list[tuple[str, str]] = []
        """(type, name) of what was rendered, not deployed (see the module docstring)."""
        self._echo = EchoBackend(region, account)
        self.on_create: Callable[[str, str, str], None] | None = None

    # --- the Backend protocol ---------------------------------------------------

    @property
    def supported_types(self) -> list[str]:
        return sorted(HANDLERS)

    def create(
        self, urn: str, type_: str, name: str, inputs: dict[str, Any], custom: bool
    ) -> tuple[str | None, dict[str, Any]]:
        if not custom:
            return None, {}
        handler = HANDLERS.get(type_)
        if handler is None and rendered_only(type_):
            return self.render(Call(urn, type_, name, inputs))
        if handler is None:
            raise UnsupportedResource(type_, name)
        call = Call(urn, type_, name, inputs)
        try:
            id_, extra = handler(self, call)
        except NotHeld:
            return self.render(Call(urn, type_, name, inputs))
        call.outputs.update(extra)
        call.outputs.pop("id", None)
        self.created.append((type_, name, id_))
        if self.on_create is not None:
            self.on_create(type_, name, id_)
        return id_, call.outputs

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            zones = self.client("ec2").describe_availability_zones()["AvailabilityZones"]
            excluded = set(args.get("excludeZoneIds") or [])
            zones = [
                z
                for z in zones
                if z.get("State", "available") == "available" and z["ZoneId"] not in excluded
            ]
            return {
                "id": self.region,
                "names": [z["ZoneName"] for z in zones],
                "zoneIds": [z["ZoneId"] for z in zones],
                "groupNames": [self.region],
                "state": "available",
                "region": self.region,
            }
        if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            data = self.client("ecr").get_authorization_token()["authorizationData"][0]
            user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
            return {
                "id": self.region,
                "userName": user,
                "password": password,
                "authorizationToken": data["authorizationToken"],
                "proxyEndpoint": data["proxyEndpoint"],
                "expiresAt": str(data["expiresAt"]),
            }
        return answer(self.identity, token, args)

    # --- helpers -----------------------------------------------------------------

    def render(self, call: Call) -> tuple[str, Outputs]:
        """Answers as the echo backend does, and lists the resource as rendered, not deployed."""
        with self.lock:
            self.rendered.append((call.type, call.name))
        id_, outputs = self._echo.create(call.urn, call.type, call.name, call.raw, True)
        return id_ or "", outputs

    def client(self, service: str) -> Any:
        with self.lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service,  # pyright: ignore[reportArgumentType]
                    endpoint_url=self.endpoint_url,
                    config=Config(retries={"max_attempts": 2, "mode": "standard"}),
                )
            return self._clients[service]

    def name(self, call: Call) -> str:
        """The physical name: the program's own, or Pulumi-style autonaming (see echo)."""
        kind = TYPES[call.type]
        assert kind.name_key is not None
        given = call.get(kind.name_key)
        name = (
            str(given)
            if given
            else EchoBackend.autoname(call.name, call.urn, kind, call.get("namePrefix"))
        )
        call.outputs[kind.name_key] = name
        return name

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.identity.account}:{resource}"
