"""What the pages that import a file (the registry's attendance, near-miss cases) share: the
upload is larger than the app's form limit, so its view is exempt from the app-wide CSRF check,
raises the limit for its own request and checks the token itself once the form can be read
(the app-wide check would read it first and refuse it as too large). The templates' parts are in
templates/_import.html.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, flash, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

_LOG = logging.getLogger(__name__)

IMPORT_MAX_BYTES = 10 * 1024 * 1024  # a year of attendance or near-misses in Excel is well under this


@dataclass(frozen=True)
class Upload:
    """The file posted in the form's ``file`` field."""

    filename: str
    data: bytes


def exempt(bp: Blueprint, view: str) -> None:
    """Exempt the import view ``view`` of ``bp`` from the app-wide CSRF check (it checks the
    token itself: :func:`received`)."""
    def _exempt(setup) -> None:
        csrf = setup.app.extensions.get("csrf")
        if csrf is not None:
            csrf.exempt(f"{bp.import_name}.{view}")
    bp.record_once(_exempt)


def received() -> Upload | None:
    """The uploaded file, read after raising this request's size limit and checking its CSRF
    token (CSRFError if it is wrong, 413 if the file is too large); None, with a message for
    the page, if no file was chosen."""
    request.max_content_length = IMPORT_MAX_BYTES
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError as exc:
        raise CSRFError(str(exc)) from exc
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(_("Choose a CSV or Excel file."), "error")
        return None
    return Upload(upload.filename, upload.read())
