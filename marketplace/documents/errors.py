"""Errors of the document store (rendered like every AppError: ``{"error", "detail", "request_id"}``)."""

from __future__ import annotations

from marketplace.core.errors import AppError


class PayloadTooLarge(AppError):
    """The file is larger than the platform accepts."""

    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(AppError):
    """This kind of file is not accepted: upload a PDF, PNG or JPEG image, or a STEP, IGES, STL or DXF drawing."""

    status_code = 415
    code = "unsupported_media_type"
