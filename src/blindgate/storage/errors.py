"""The storage package's errors, under one root. Messages name the store's state, never a row's data."""

from __future__ import annotations

import sqlalchemy as sa

from blindgate.errors import EXIT_INPUT, EXIT_PEER, BlindgateError


class StorageError(BlindgateError):
    """Root: the store cannot be used as asked (a command exits 3, as for a peer that failed)."""

    exit_status = EXIT_PEER


class NoStore(StorageError):
    """No --db given, no $BLINDGATE_DB and no demo store here."""

    exit_status = EXIT_INPUT


class BadStoreUrl(StorageError, ValueError):
    """The store URL names no database SQLAlchemy can open (a typo, a missing driver)."""

    exit_status = EXIT_INPUT


class StoreNotCurrent(StorageError):
    """The store's schema is older than this blindgate's: ``blindgate db upgrade`` brings it up."""


class StoreTooNew(StorageError):
    """The store's schema is newer than this blindgate knows (a later release wrote it)."""


class StoreUnavailable(StorageError):
    """The store cannot be reached or read (no such file, the server refused)."""


def explain(failure: BaseException) -> tuple[str, int]:
    """What a command says about a store it cannot use, and its exit status (`blindgate.errors`).

    The storage errors say their own status (``exit_status``); a driver's error is an
    unavailable store (3), named by its class alone: a driver's message may quote a URL with
    its password.
    """
    if isinstance(failure, StorageError):
        return str(failure), failure.exit_status
    return f"cannot use the store ({failure.__class__.__name__})", EXIT_PEER


# What `explain` explains: the storage package's own errors and a driver's.
STORE_FAILURES = (StorageError, sa.exc.DBAPIError)
