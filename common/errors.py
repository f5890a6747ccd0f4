"""The one coded error base outside handlers/, and the one shape of validation messages."""

from __future__ import annotations


class CodedError(Exception):
    """A failure with a stable UPPER_SNAKE `code` and a message for humans; always built as `Error(code, message)`.

    Subclasses name the part that raised it (InfraError, LoadError, ...) and may add fields after the message, but keep
    this constructor order. `str(err)` is "CODE: message"; the CLIs print it as `error CODE: message` and exit 2.
    """

    def __init__(self, code: str, message: str) -> None:
        code = str(code)
        if not code or code.upper() != code or " " in code:
            raise ValueError(expected("an UPPER_SNAKE error code", type(self).__name__, code))
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def expected(what: str, for_: str, received: object) -> str:
    """The one shape of validation messages: "Expected X for Y but received Z"."""
    return f"Expected {what} for {for_} but received {received!r}"
