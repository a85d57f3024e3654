"""The CrossGuard pack for the wordpress-swarm stacks: `pulumi preview --policy-pack policy`.

Constructing PolicyPack starts the analyzer the CLI talks to, so nothing else lives here: the
policies are in wpswarm_policies, where tests import them.
"""

from pulumi_policy import EnforcementLevel, PolicyPack
from wpswarm_policies import POLICIES

PolicyPack(name="wordpress-swarm-guardrails", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
