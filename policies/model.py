"""How a rule is declared, and the small readers the rules share.

A rule is a plain function plus its metadata (id, the baseline ids it
implements, severity, default enforcement). `resource_rule` and `stack_rule`
register it in `RULES` through `declare`; `property_rule` declares the common
"this boolean property must (not) be true" rule without a function of its own.
`policy_of` turns a rule into the CrossGuard policy object that both
`pulumi preview --policy-pack` and the offline evaluation call.

Props arrive from the engine as read-only Mapping/Sequence proxies that raise
`UnknownValueError` on values not known during preview, so the readers here
test against the abstract collection types, never `dict`/`list`, and the stack
rules follow references through `property_dependencies` (known during
preview) rather than through ids (unknown for new resources).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypedDict, Unpack

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY
WORLD = ("0.0.0.0/0", "::/0")

ResourceCheck = Callable[[ResourceValidationArgs], Iterable[str]]
StackCheck = Callable[[StackValidationArgs], Iterable[tuple[str | None, str]]]


@dataclass(frozen=True)
class Rule:
    """One rule of the pack. `types` is set for resource rules, empty for stack rules."""

    id: str
    name: str
    sources: tuple[str, ...]
    severity: Severity
    enforcement: EnforcementLevel
    description: str
    types: tuple[str, ...] = ()
    resource_check: ResourceCheck | None = None
    stack_check: StackCheck | None = None
    config: dict[str, dict[str, Any]] = field(default_factory=dict)
    """JSON schema of the per-stack properties the rule reads (`get_config()`)."""

    @property
    def is_stack_rule(self) -> bool:
        return self.stack_check is not None

    def validate_resource(self, args: ResourceValidationArgs, report: ReportViolation) -> None:
        if self.resource_check is None or args.resource_type not in self.types:
            return
        for message in self.resource_check(args):
            report(message, None)

    def validate_stack(self, args: StackValidationArgs, report: ReportViolation) -> None:
        if self.stack_check is None:
            return
        for urn, message in self.stack_check(args):
            report(message, urn)


RULES: list[Rule] = []


class _Required(TypedDict):
    sources: Sequence[str]
    severity: Severity
    description: str


class Declaration(_Required, total=False):
    """What every rule declares besides its id, name and check: the baseline ids it
    implements, its severity and description, its default level and its config schema."""

    enforcement: EnforcementLevel
    config: dict[str, dict[str, Any]]


def declare(
    id: str,
    name: str,
    declared: Declaration,
    *,
    types: str | Sequence[str] = (),
    resource_check: ResourceCheck | None = None,
    stack_check: StackCheck | None = None,
) -> Rule:
    """Registers a rule in `RULES`; ids and names are unique across the pack."""
    rule = Rule(
        id=id,
        name=name,
        sources=tuple(declared["sources"]),
        severity=declared["severity"],
        enforcement=declared.get("enforcement", MANDATORY),
        description=declared["description"],
        types=(types,) if isinstance(types, str) else tuple(types),
        resource_check=resource_check,
        stack_check=stack_check,
        config=declared.get("config") or {},
    )
    if any(r.name == rule.name or r.id == rule.id for r in RULES):
        raise ValueError(f"duplicate rule {rule.id} {rule.name}")
    RULES.append(rule)
    return rule


def resource_rule(
    id: str, name: str, *, types: str | Sequence[str], **declared: Unpack[Declaration]
) -> Callable[[ResourceCheck], ResourceCheck]:
    """Declares a check over one resource's props; it yields one message per violation."""

    def register(check: ResourceCheck) -> ResourceCheck:
        declare(id, name, declared, types=types, resource_check=check)
        return check

    return register


def stack_rule(
    id: str, name: str, **declared: Unpack[Declaration]
) -> Callable[[StackCheck], StackCheck]:
    """Declares a check over the whole stack; it yields (urn or None, message)."""

    def register(check: StackCheck) -> StackCheck:
        declare(id, name, declared, stack_check=check)
        return check

    return register


def property_rule(
    id: str,
    name: str,
    *,
    types: str | Sequence[str],
    prop: str,
    message: str,
    must_be: bool | None = None,
    must_not_be: bool | None = None,
    strict: bool = False,
    exempt: Callable[[Mapping[str, Any]], bool] | None = None,
    **declared: Unpack[Declaration],
) -> Rule:
    """Declares a rule over one boolean property; `prop` may be a dotted path into objects.

    `must_be=X` reports `message` unless the property is X, so an unset property fails;
    `must_not_be=X` reports it only when the property is X, so an unset one passes. The text
    forms "true"/"false" that older provider versions send count as the booleans, unless
    `strict`. Resources that `exempt` accepts are skipped (a replica inherits the setting).
    """
    if (must_be is None) == (must_not_be is None):
        raise ValueError(f"{id}: give exactly one of must_be and must_not_be")
    required = must_be is not None
    expected = must_be if must_be is not None else must_not_be

    def matches(value: Any) -> bool:
        if strict:
            return value is expected
        return is_true(value) if expected else is_false(value)

    def check(args: ResourceValidationArgs) -> Iterator[str]:
        if exempt is not None and exempt(args.props):
            return
        if matches(prop_at(args.props, prop)) != required:
            yield message

    return declare(id, name, declared, types=types, resource_check=check)


def policy_of(rule: Rule) -> ResourceValidationPolicy | StackValidationPolicy:
    """The CrossGuard policy for a rule: same name, level, severity; the ids as tags."""
    description = f"[{rule.id}] {rule.description} ({', '.join(rule.sources)})"
    schema = PolicyConfigSchema(properties=rule.config) if rule.config else None
    tags = [rule.id, *rule.sources]
    kind = (
        partial(StackValidationPolicy, validate=rule.validate_stack)
        if rule.is_stack_rule
        else partial(ResourceValidationPolicy, validate=rule.validate_resource)
    )
    return kind(
        name=rule.name,
        description=description,
        enforcement_level=rule.enforcement,
        config_schema=schema,
        severity=rule.severity,
        tags=tags,
    )


# --- readers -------------------------------------------------------------------------------


def is_true(value: Any) -> bool:
    """A boolean property; some older provider versions send "true" strings."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def prop_at(props: Mapping[str, Any], path: str) -> Any:
    """A property by dotted path (`imageScanningConfiguration.scanOnPush`); None when unset."""
    *outer, last = path.split(".")
    for key in outer:
        props = mapping(props.get(key))
    return props.get(last)


def present(props: Mapping[str, Any], key: str) -> bool:
    """Whether a property is set (non-empty), without failing on a value that a preview does
    not know yet (a new resource's id or ARN): such a value is set."""
    if not any(k == key for k in props):
        return False
    try:
        value = props[key]
    except UnknownValueError:
        return True
    if isinstance(value, str | Sequence | Mapping):
        return len(value) > 0
    return value is not None


def known_text(props: Mapping[str, Any], key: str) -> str:
    """A string property, or "" when it is not set or not known yet."""
    try:
        value = props.get(key)
    except UnknownValueError:
        return ""
    return str(value) if value is not None else ""


def items(value: Any) -> list[Any]:
    """A list property as a list (missing or null -> [])."""
    if value is None or isinstance(value, str | bytes):
        return []
    if isinstance(value, Sequence):
        return list(value)
    return []


def mapping(value: Any) -> Mapping[str, Any]:
    """An object property as a mapping (missing or null -> {}); also accepts a 1-item list."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 1:
        return mapping(value[0])
    return {}


def parse_json(value: Any) -> Any:
    """A JSON-string property (policy documents, container definitions); already-parsed passes."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def containers(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The container definitions of a task definition (a JSON string in the engine's inputs)."""
    return [
        c for c in items(parse_json(props.get("containerDefinitions"))) if isinstance(c, Mapping)
    ]


def container_name(container: Mapping[str, Any]) -> str:
    return str(container.get("name") or "?")


def statements(document: Any) -> list[Mapping[str, Any]]:
    """The statements of an IAM policy document (JSON string or object)."""
    doc = mapping(parse_json(document))
    found = doc.get("Statement")
    if isinstance(found, Mapping):
        return [found]
    return [s for s in items(found) if isinstance(s, Mapping)]


def strings(value: Any) -> list[str]:
    """A policy field that may be one string or a list of strings."""
    if isinstance(value, str):
        return [value]
    return [str(v) for v in items(value)]


def protocol(props: Mapping[str, Any]) -> str:
    """The protocol of a security-group or NACL rule (`ipProtocol` or `protocol`)."""
    return str(props.get("ipProtocol", props.get("protocol", "")))


def port_range(props: Mapping[str, Any]) -> tuple[int, int]:
    """(from, to) of a security-group rule; protocol -1 (all) means every port."""
    if protocol(props) in ("-1", "all"):
        return (0, 65535)
    low = props.get("fromPort")
    high = props.get("toPort")
    return (int(low) if low is not None else 0, int(high) if high is not None else 65535)


def world_cidrs(props: Mapping[str, Any]) -> list[str]:
    """The world-open CIDRs of a rule resource or an inline rule."""
    cidrs = [props.get("cidrIpv4"), props.get("cidrIpv6")]
    cidrs += strings(props.get("cidrBlocks")) + strings(props.get("ipv6CidrBlocks"))
    return [c for c in cidrs if c in WORLD]


# --- the stack graph ------------------------------------------------------------------------


def of_type(args: StackValidationArgs, *types: str) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type in types]


def refs(resource: PolicyResource, prop: str, *types: str) -> list[PolicyResource]:
    """The resources a property refers to (through the engine's property dependencies)."""
    found = resource.property_dependencies.get(prop) or []
    return [r for r in found if not types or r.resource_type in types]


def referrers(
    args: StackValidationArgs, target: PolicyResource, prop: str, *types: str
) -> list[PolicyResource]:
    """The resources of `types` whose property `prop` refers to `target`."""
    return [
        r
        for r in of_type(args, *types)
        if any(d.urn == target.urn for d in r.property_dependencies.get(prop) or [])
    ]


def walk_strings(value: Any) -> Iterator[str]:
    """Every string leaf of a property value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from walk_strings(v)
    elif isinstance(value, Sequence):
        for v in value:
            yield from walk_strings(v)
