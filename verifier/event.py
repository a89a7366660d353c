"""A typed, read-only view of the API Gateway REQUEST-authorizer event (mTLS).

Why a view and not a copy: the same raw dict comes from AWS Lambda, from the
nginx adapter and from the fuzzer. Wrapping it (as AWS Lambda Powertools'
``APIGatewayAuthorizerRequestEvent`` does) gives snake_case properties and
case-insensitive header lookup without trusting its shape: every accessor
returns ``None``/empty on a missing or wrongly typed field, so a malformed
event reaches the checks and is denied there, never raises here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class ClientCert:
    """``requestContext.identity.clientCert``: what the TLS terminator saw."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    @property
    def client_cert_pem(self) -> str | None:
        return _text(self._data.get("clientCertPem"))

    @property
    def subject_dn(self) -> str | None:
        """Informational only: decisions use the parsed certificate, never this string."""
        return _text(self._data.get("subjectDN"))

    @property
    def issuer_dn(self) -> str | None:
        return _text(self._data.get("issuerDN"))

    @property
    def serial_number(self) -> str | None:
        return _text(self._data.get("serialNumber"))


class AuthorizerEvent:
    """The REQUEST authorizer event: method, path, headers, client certificate."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw if isinstance(raw, Mapping) else {}
        self._context = _mapping(self.raw.get("requestContext"))
        self._identity = _mapping(self._context.get("identity"))
        self._headers: dict[str, list[Any]] | None = None

    @property
    def method_arn(self) -> str:
        return _text(self.raw.get("methodArn")) or ""

    @property
    def http_method(self) -> str:
        return _text(self.raw.get("httpMethod")) or _text(self._context.get("httpMethod")) or ""

    @property
    def path(self) -> str:
        """The raw request path, possibly with a query string (nginx ``$request_uri``)."""
        return _text(self.raw.get("path")) or _text(self._context.get("path")) or ""

    @property
    def request_id(self) -> str:
        return _text(self._context.get("requestId")) or ""

    @property
    def source_ip(self) -> str:
        return _text(self._identity.get("sourceIp")) or ""

    @property
    def client_cert(self) -> ClientCert:
        return ClientCert(_mapping(self._identity.get("clientCert")))

    def get_header_value(self, name: str, default: str | None = None) -> str | None:
        """The header's value, matching ``name`` case-insensitively (HTTP semantics)."""
        values = self.get_header_values(name)
        return values[-1] if values else default

    def get_header_values(self, name: str) -> list[str]:
        """Every value sent for ``name``: ``multiValueHeaders`` wins over ``headers``.

        Why both: API Gateway fills ``multiValueHeaders`` with repeated headers
        and ``headers`` with only the last one; a check that must refuse
        repeated headers (Authorization) needs to see all of them.
        """
        wanted = name.lower()
        found = [v for v in self._header_index().get(wanted, ()) if isinstance(v, str)]
        if found:
            return found
        single = _mapping(self.raw.get("headers"))
        return [
            value
            for key, value in single.items()
            if isinstance(key, str) and key.lower() == wanted and isinstance(value, str)
        ]

    def _header_index(self) -> dict[str, list[Any]]:
        """``multiValueHeaders`` by lower-cased name; built once per event.

        The value lists are kept as sent (a merged name gets a new list, the
        event is never changed); only the values of a header that is asked
        for are filtered to strings, so the index costs one pass over the names.
        """
        if self._headers is None:
            index: dict[str, list[Any]] = {}
            for key, values in _mapping(self.raw.get("multiValueHeaders")).items():
                if isinstance(key, str) and isinstance(values, list):
                    name = key.lower()
                    index[name] = index[name] + values if name in index else values
            self._headers = index
        return self._headers
