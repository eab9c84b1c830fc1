"""Routing: the compiled policy and the decisions made per request, before anything is sent.

``resolver`` holds the compiled form (:class:`Resolver`; its data classes are in ``compiled``) and resolves a request
into its first candidate; ``matching`` finds model names (exact, substring, difflib; cached);
``fallback`` is the lazy, replayable queue of the candidates after the first; ``health`` is provider health
(rules, snapshots, the memory store), which reorders a queue; ``health_core`` decides what the shared store
does (send these commands, or answer from memory while Redis is away) and ``health_redis`` is its thin sync
and async shells over redis-py. ``strategies`` orders one group of candidates (weighted, latency, least_busy,
usage, cost) from the ``load`` tracker's measurements and the ``limits``' headroom; ``limits`` (with
``limits_core`` and ``limits_redis``, built as health is) counts rpm, tpm, in-flight requests and budgets;
``facts`` is what routing knows of a request (its estimated size, tags, headers; ``when:`` rules); ``clock``
is the one clock every decision reads.

May import: ``router.errors``, ``router.events``, ``router.settings``. Never imports ``router.execution``,
``router.transport`` or ``router.adapters``: routing decides, it does not send.
"""
