"""The I/O seams: how an adapter's HTTP request reaches a provider and its bytes come back.

``sync`` holds the wire types every adapter builds (``HttpRequest``, ``HttpResponse``, ``StreamResponse``)
and ``RequestsTransport`` (requests, one pooled session per provider); ``aio`` is ``AiohttpTransport``, the
same seam for asyncio; ``core`` is what both decide alike (time limits, multipart bodies, which failure is
which error). Foreign exceptions (requests, urllib3,
aiohttp, socket) are translated into router's :class:`~router.errors.ProviderError` classes here, once.

May import: ``router.errors``, ``router.settings``. Knows nothing of policies, routing or wire formats.
"""
