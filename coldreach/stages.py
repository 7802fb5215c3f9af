"""What a promotion route is made of: stages as data (coldreach/promote.py walks them).

A stage either writes `cold-reach:*` keys (then `pulumi up` applies it) or, when it
sets nothing, is a command an operator runs (a migration, waiting for a queue to
drain) whose outcome only the operator can see: it counts as done once attested
(`coldreach promote --confirm FACT`) or once a later stage is done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from coldreach import stacks
from coldreach.replacement import Step


@dataclass(frozen=True)
class StageContext:
    """What a stage's checks see: the stack as configured, and as the stage leaves it."""

    config: stacks.StackConfig
    steps: list[Step]
    outputs: Mapping[str, object] = field(default_factory=dict)
    """The deployed stack's outputs when given (`pulumi stack output --json`)."""
    confirmed: frozenset[str] = frozenset()
    """Facts the operator attested (`--confirm FACT`), known only at run time."""


Check = Callable[[StageContext], str | None]
"""Returns why the stage may not run now, or None."""


@dataclass(frozen=True)
class Fact:
    """Something true only at run time (a queue drained), attested with `--confirm NAME`."""

    name: str
    how: str
    """What to look at before attesting it, in commands an operator can run."""


@dataclass(frozen=True)
class Stage:
    name: str
    does: str
    sets: Mapping[str, str]
    """`cold-reach:*` keys (without the prefix) and the values the stage writes; empty for a
    stage that is a command."""
    verify: str
    """What shows it worked, after `pulumi up` (or the command)."""
    rollback: str
    checks: tuple[Check, ...] = ()
    """Preconditions beyond the one every stage has: nothing stateful replaced or deleted."""
    needs: tuple[Fact, ...] = ()
    """Run-time facts the operator must attest before this stage."""
    retires: frozenset[str] = frozenset()
    """Stateful resources (logical names) this stage deletes on purpose. Nothing else stateful
    may go, and these only once every precondition holds."""
    watch: str = ""
    """What to watch while it runs, and for how long."""

    def done(self, config: stacks.StackConfig) -> bool:
        return bool(self.sets) and all(
            config.config.get(f"{config.project}:{key}") == value
            for key, value in self.sets.items()
        )

    def missing(self, confirmed: frozenset[str]) -> list[Fact]:
        return [fact for fact in self.needs if fact.name not in confirmed]


@dataclass(frozen=True)
class Route:
    source: int
    target: int
    stages: tuple[Stage, ...]
    runbook: str
    """The document an intern follows (a repository path)."""
    before: Mapping[str, str] = field(default_factory=dict)
    """Keys stages set, as they are before the route starts (besides the phase): the cost
    of every stage is shown from there, whatever stage the stack file is at."""

    def start(self, config: stacks.StackConfig) -> dict[str, str]:
        keys = {"phase": str(self.source), **self.before}
        return {f"{config.project}:{k}": v for k, v in keys.items()}

    def position(self, config: stacks.StackConfig, confirmed: frozenset[str] = frozenset()) -> int:
        """Index of the next stage; len(stages) when the route is done.

        The last stage whose keys are all set marks the point reached (a later stage may
        rewrite an earlier one's key, as traffic steps do); command stages right after it
        are passed once their facts are attested."""
        reached = max((i + 1 for i, s in enumerate(self.stages) if s.done(config)), default=0)
        while (
            reached < len(self.stages)
            and not self.stages[reached].sets
            and not self.stages[reached].missing(confirmed)
        ):
            reached += 1
        return reached

    def overrides_through(self, config: stacks.StackConfig, index: int) -> dict[str, str]:
        """The keys the stack has after stages 0..index: later stages win."""
        keys = self.start(config)
        for stage in self.stages[: index + 1]:
            keys |= {f"{config.project}:{k}": v for k, v in stage.sets.items()}
        return keys
