"""The image builder. This package's pure layer: parse, substitute, ignore, plan.

- :mod:`rootless.build.dockerfile`: Containerfile text -> :class:`Containerfile`
- :mod:`rootless.build.expand`: variable substitution and ARG/ENV scoping per stage
- :mod:`rootless.build.ignore`: .containerignore / .dockerignore matching and walking
- :mod:`rootless.build.stages`: which stages a target needs and what can run at once
"""

from rootless.build.dockerfile import Containerfile, Instruction, Stage, parse, parse_instruction
from rootless.build.expand import BuildScope, Step, make_scope, platform_args, walk_stage
from rootless.build.ignore import IgnoreMatcher, load_ignore, walk_context
from rootless.build.stages import BuildPlan, StagePlan, plan_build

__all__ = [
    "BuildPlan",
    "BuildScope",
    "Containerfile",
    "IgnoreMatcher",
    "Instruction",
    "Stage",
    "StagePlan",
    "Step",
    "load_ignore",
    "make_scope",
    "parse",
    "parse_instruction",
    "plan_build",
    "platform_args",
    "walk_context",
    "walk_stage",
]
