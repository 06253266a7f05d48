"""Shapes every part of the API shares: problem details and cursor pages."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

ItemT = TypeVar("ItemT")


class FieldError(BaseModel):
    """One bad part of a request, by where it is."""

    in_: str = Field(alias="in", description="body, query, path or header")
    field: str = Field(description="dotted path inside it, e.g. thresholds.air_temp")
    pointer: str | None = Field(default=None, description="JSON pointer into the body")
    detail: str


class Problem(BaseModel):
    """RFC 9457 problem details; extension members (``errors``, ``reason``...) may follow."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "about:blank",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "no device 'nope'",
                    "instance": "/v1/devices/nope/config",
                }
            ]
        },
    )

    type: str = Field(description="URI of the problem kind; about:blank when the status says it")
    title: str
    status: int
    detail: str
    instance: str = Field(description="the request path")
    errors: list[FieldError] | None = Field(
        default=None, description="for validation problems: each bad field"
    )


class Page(BaseModel, Generic[ItemT]):
    """A page of a list; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[ItemT]
    next_cursor: str | None = Field(description="opaque; null on the last page")
