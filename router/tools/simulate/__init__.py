"""``router simulate``: a policy run against a traffic and fault model on virtual time (DESIGN section 10).

``scenario`` is the language (pydantic models, ``schemas/scenario.schema.json``) and ``load`` reads it with
located errors, checked against the policy; ``engine`` runs the real AsyncClient on a virtual-time event
loop (``loop``) over the simulated transport (:mod:`router.transport.simulated`), the providers' behaviour
drawn by ``behaviour`` and rendered in their wire format by ``wire``; ``metrics`` counts the client's
events into the report, and ``report`` prints it, compares two and checks ``expect:`` lines.
"""
