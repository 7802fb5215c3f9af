"""Runs the real Pulumi program in-process, with a backend standing in for the providers.

The Pulumi SDK talks to an engine through a "resource monitor". Here the
monitor is the SDK's own mock monitor, extended to keep what a unit-test mock
never sees: the URN, the parent, `protect`, aliases and dependencies of every
registration, exactly as the SDK sent them. Resource creation and invokes go
to a `Backend` (echo or moto), which answers with ids and outputs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import pulumi
from pulumi.runtime import config as pulumi_config
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from coldreach.runtime.model import Deployment, Resource, is_archive, normalize, reveal


class Backend(Protocol):
    """Creates resources and answers invokes for one offline run."""

    def create(
        self, urn: str, type_: str, name: str, inputs: dict[str, Any], custom: bool
    ) -> tuple[str | None, dict[str, Any]]:
        """Returns (id, outputs). `inputs` keep their secret wrappers."""
        ...

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]: ...


class ProgramError(Exception):
    """The program stopped with a user-facing error (e.g. a bad config value)."""


class _Mocks(mocks.Mocks):
    """Unused by the capturing monitor, but the SDK requires one."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        raise AssertionError("registrations go through CapturingMonitor.RegisterResource")

    def call(self, args: mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        return self.backend.invoke(args.token, reveal(args.args))


class CapturingMonitor(mocks.MockMonitor):
    def __init__(self, backend: Backend) -> None:
        super().__init__(_Mocks(backend))
        self.backend = backend
        self.captured: list[Resource] = []
        self.stack_urn: str | None = None
        self.stack_outputs: dict[str, Any] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # As the engine does: the parent's whole type chain, except the root stack's.
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != "pulumi:pulumi:Stack":
                type_ = f"{parent_type}${type_}"
        stack, project = settings.get_stack(), settings.get_project()
        return f"urn:pulumi:{stack}::{project}::{type_}::{name}"

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            self.stack_urn = urn
            return resource_pb2.RegisterResourceResponse(urn=urn)

        _ensure_event_loop()
        inputs = normalize(rpc.deserialize_properties(request.object))
        id_, outputs = self.backend.create(
            urn, request.type, request.name, inputs, bool(request.custom)
        )
        # The SDK checks output types, and an archive came back as a plain dict; no program
        # reads a function's code back, so it is not returned.
        returned = {k: v for k, v in outputs.items() if not is_archive(v)}
        obj = _sync_await(rpc.serialize_properties(returned, {}))
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, id_ or "", outputs)
        self.captured.append(
            Resource(
                urn=urn,
                type=request.type,
                name=request.name,
                id=id_,
                parent=request.parent or None,
                custom=bool(request.custom),
                protect=bool(request.protect),
                inputs=inputs,
                outputs=outputs,
                dependencies=list(request.dependencies),
                aliases=[a.urn or a.spec.name for a in request.aliases],
                delete_before_replace=bool(request.deleteBeforeReplace),
                ignore_changes=list(request.ignoreChanges),
            )
        )
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_ or "", object=obj)

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn == self.stack_urn:
            self.stack_outputs = normalize(rpc.deserialize_properties(request.outputs))
        return super().RegisterResourceOutputs(request)


class _Engine(mocks.MockEngine):
    """Keeps what the program logs (warnings about skipped features, errors)."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("coldreach.program"))
        self.messages: list[tuple[str, str]] = []

    def Log(self, request: Any) -> None:
        severity = {1: "info", 2: "warning", 3: "error"}.get(request.severity)
        if severity:
            self.messages.append((severity, request.message))


def evaluate(
    program: Callable[[], None],
    *,
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: list[str],
    backend: Backend,
) -> Deployment:
    """Runs `program` once as `project`/`stack` with `config` and returns what it declared.

    Raises `ProgramError` with the program's own message when it stops on a
    user error (`pulumi.RunError`), so callers can print it without a traceback.
    """
    monitor = CapturingMonitor(backend)
    engine = _Engine()
    settings.reset_options(project=project, stack=stack, preview=False, organization="organization")
    bag = settings.Settings(
        project=project,
        stack=stack,
        monitor=monitor,
        engine=engine,
        dry_run=False,
        organization="organization",
    )
    features = set(monitor.GetDeploymentInfo(None).supportedFeatures)
    bag.monitor_features = features  # pyright: ignore[reportAttributeAccessIssue]
    settings.configure(bag)
    pulumi_config.set_all_config(dict(config), secret_keys)
    try:
        _sync_await(run_in_stack(program))
    except pulumi.RunError as err:
        raise ProgramError(str(err)) from None
    finally:
        settings.ROOT.set(None)
    return Deployment(
        stack=stack,
        project=project,
        resources=monitor.captured,
        outputs=monitor.stack_outputs,
        messages=engine.messages,
    )
