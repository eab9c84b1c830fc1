"""Routing: the compiled policy and the decisions made per request, before anything is sent.

``resolver`` holds the compiled form (:class:`Resolver`, one ``Table`` per namespace) and resolves a request
into its first candidate; ``matching`` finds model names (exact, substring, difflib; cached);
``fallback`` is the lazy, replayable queue of the candidates after the first; ``health`` is provider health
(rules, snapshots, the memory store), which reorders a queue; ``health_core`` decides what the shared store
does (send these commands, or answer from memory while Redis is away) and ``health_redis`` is its thin sync
and async shells over redis-py.

May import: ``router.errors``, ``router.events``, ``router.settings``. Never imports ``router.execution``,
``router.transport`` or ``router.adapters``: routing decides, it does not send.
"""
