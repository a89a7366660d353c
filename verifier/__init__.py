"""The verifier: decides, for every request nginx forwards, allow or deny.

nginx terminates mTLS and asks ``GET /_authz`` (``verifier.app``) before
proxying to the API. The adapter turns that subrequest into an AWS API Gateway
REQUEST-authorizer event (``verifier.subrequest``) and calls the pure core
(``verifier.decision.decide``; the same core behind AWS Lambda is
``verifier.lambda_handler.handler``), which runs, in order:

1. ``transport``  the client certificate: verified, parses, clientAuth, valid, client CA
2. ``bearer``     exactly one ``Authorization: Bearer <token>``
   ``claims``     the token (PyJWT) with its key from ``jwks``
3. ``binding``    certificate CN == token ``azp``; RFC 8705 thumbprint
4. ``paths``      canonical path; ``policy`` route roles and tenant claims

Every refusal is a ``verifier.errors.VerifierError`` with a stable reason code;
the caller's ``identity`` has one schema (the answer, the audit record, the
API); ``audit`` builds the record of each decision and ``auditlog`` writes it,
failing closed. The key source, the CRL source and the ``caches`` are objects
the adapter builds together and passes to every decision.
"""
