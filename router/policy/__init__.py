"""The policy language: routes.yaml as data, with every problem located.

``model`` holds the pydantic models (frozen, ``extra="forbid"``; their docstrings are the schema's
descriptions); ``_yaml`` reads YAML keeping each node's line and column; ``loader`` turns a path, a string or
a mapping into a :class:`~router.policy.model.Policy` and reports every problem at once as
``file:line:col``; ``checks`` finds reference errors (unknown providers, aliases, pins) and runs the policy's
own ``tests:``; ``compiler`` turns a Policy into the frozen :class:`~router.routing.resolver.Resolver`.

May import: ``router.errors``, ``router.routing`` (the compiler builds its objects). Never does network I/O;
files are read in ``loader`` only.
"""

from router.policy.model import *  # noqa: F403 - the policy model is this package's public face
from router.policy.model import __all__ as __all__
