"""``kagiban verify``: recompute the audit trail's hash chain and say whether it is intact, then
check every stored station signature (hub.store_signatures)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from hub.chain import verify
from hub.db import make_engine
from hub.store_signatures import SignatureReport, check_signatures

_LOG = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_TAMPERED = 1
EXIT_CANNOT_VERIFY = 2


def run(db_url: str, out: TextIO | None = None) -> int:
    """Print a report on the chain in ``db_url``; 0 intact, 1 tampered, 2 could not read it."""
    out = out or sys.stdout
    url = make_url(db_url)
    shown = url.render_as_string(hide_password=True)
    # Opening a missing SQLite file would create an empty one and call it intact.
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).is_file():
            print(f"ERROR: no database file at {url.database}", file=out)
            return EXIT_CANNOT_VERIFY
    engine = make_engine(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
        if not {"events", "chain_head"} <= tables:
            print(f"ERROR: {shown} holds no kagiban audit trail", file=out)
            return EXIT_CANNOT_VERIFY
        report = verify(engine)
        signatures: SignatureReport | None = check_signatures(engine) if "station_keys" in tables else None
    except SQLAlchemyError as exc:
        _LOG.debug("verify failed", exc_info=True)
        # The driver's own message, without SQLAlchemy's statement dump.
        print(f"ERROR: cannot read {shown}: {getattr(exc, 'orig', None) or exc}", file=out)
        return EXIT_CANNOT_VERIFY
    finally:
        engine.dispose()
    print(report, file=out)
    if signatures is None:
        print("signatures: not checked (this store predates station signatures)", file=out)
    else:
        for line in signatures.lines():
            print(line, file=out)
    return EXIT_OK if report.ok and (signatures is None or signatures.ok) else EXIT_TAMPERED
