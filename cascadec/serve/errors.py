"""OpenAI-style errors: one exception with an HTTP status, a stable code and a message.

Clients of an OpenAI-compatible server read ``{"error": {"message", "type", "param",
"code"}}``; the official client raises ``BadRequestError`` (400), ``NotFoundError`` (404),
``UnprocessableEntityError`` (422) and so on from it. ``code`` is a cascadec diagnostic code
(the E6xx serve codes of :mod:`cascadec.errors`, or the marker/spec code that made a model
name invalid), so scripts can match on it as they do on lint's output.
"""

from __future__ import annotations

from cascadec.errors import CascadecError

# HTTP status -> OpenAI error type
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    500: "server_error",
    503: "upstream_unavailable",
}


class ServeError(CascadecError):
    """An error the server answers with ``status`` (never a traceback, never a secret)."""

    code = "E602"

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None):
        super().__init__(message, code=code)
        self.status = status
        self.param = param

    def body(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": _TYPES.get(self.status, "server_error"),
                "param": self.param,
                "code": self.code,
            }
        }


def not_found(message: str) -> ServeError:
    return ServeError(404, message, code="E600", param="model")


def too_large(message: str, param: str | None = None) -> ServeError:
    return ServeError(413, message, code="E601", param=param)


def invalid(message: str, param: str | None = None) -> ServeError:
    return ServeError(422, message, code="E602", param=param)


def upstream(status: int, message: str) -> ServeError:
    return ServeError(status, message, code="E603")
