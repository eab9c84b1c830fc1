"""router: one OpenAI-style client, and gateway, over many AI providers, routed by a YAML policy.

Data flow: ``routes.yaml -> load_policy() -> Policy -> compile_policy() -> Resolver``;
``Resolver.resolve(namespace, model, ...) -> Route`` (first candidate and lazy fallback queue).
"""

from router.compiler import compile_policy
from router.errors import NoRouteError, PolicyError, PolicyIssue, RouterError
from router.loader import load_policy
from router.policy import Policy
from router.resolver import Candidate, FallbackQueue, Resolver, RetryPlan, Route

__all__ = [
    "Candidate",
    "FallbackQueue",
    "NoRouteError",
    "Policy",
    "PolicyError",
    "PolicyIssue",
    "Resolver",
    "RetryPlan",
    "Route",
    "RouterError",
    "compile_policy",
    "load_policy",
]
__version__ = "0.1.0"
