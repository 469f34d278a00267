"""Multipart bodies read within limits: the uploaded files and the plain form fields."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

from service.api.exchange import ClientGone, Exchange
from service.errors import InvalidInput, TooLarge


async def read_form(
    exchange: Exchange, max_files: int, *, what: str = "files", setting: str = ""
) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    """Starlette's multipart parser, held to ``max_files`` files (``what`` they are and the
    ``setting`` that limits them, for the message) and the body limit; the one reader of
    multipart bodies."""
    request = Request(exchange.scope, exchange.bounded_receive())
    files: list[tuple[str, bytes]] = []
    fields: dict[str, str] = {}
    try:
        async with request.form(max_files=max_files, max_fields=32) as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files.append((value.filename or key, await value.read()))
                else:
                    fields[key] = value
    except ClientDisconnect:
        raise ClientGone from None
    except HTTPException as exc:  # the parser reports its limits and syntax errors so
        if "Too many files" in str(exc.detail):
            named = f" ({setting})" if setting else ""
            raise TooLarge(f"more than {max_files} {what} in one request{named}") from None
        raise InvalidInput(f"malformed multipart body: {exc.detail}") from None
    return files, fields
