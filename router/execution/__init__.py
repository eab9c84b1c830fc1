"""Execution: running a resolved route -- attempts, retries, failover, streams -- within one deadline.

``executor`` is the failover walk (tenacity retries one candidate; a plain loop walks the queue) for sync
and async attempts; ``chat``, ``images`` and ``speech`` build each namespace's attempt function (translate
with the adapter, send over the transport, parse); ``stream_core`` decides a stream's commit, reads and end
(sans-I/O), ``streaming`` is the caller's Stream and AsyncStream that drive it, and ``splice`` how a cut
stream is continued; ``namespaces`` are the
sync client's ``chat.completions``, ``images``, ``audio.speech`` and ``models`` shells.

May import: ``router.routing``, ``router.adapters``, ``router.transport``, ``router.errors``,
``router.events``, ``router.types``.
"""
