"""A service database whose outbox marks fail on purpose: how tests break the relay between confirm and mark."""

from __future__ import annotations

from collections.abc import Callable


class FailingMarks:
    """The database, except that the outbox's ``update_many`` (how the relay marks a batch published) calls
    ``on_range_mark`` and, with ``on_point_marks``, its ``bulk_write`` (the one-by-one fallback) calls that."""

    def __init__(self, db, on_range_mark: Callable, on_point_marks: Callable | None = None):
        self._db = db
        self._on_range_mark = on_range_mark
        self._on_point_marks = on_point_marks

    def __getattr__(self, attr):
        return getattr(self._db, attr)

    def __getitem__(self, name):
        collection = self._db[name]
        if name != "outbox":
            return collection
        marks = self

        class Collection:
            def __getattr__(self, attr):
                return getattr(collection, attr)

            def update_many(self, *args, **kwargs):
                return marks._on_range_mark(*args, **kwargs)

            def bulk_write(self, *args, **kwargs):
                if marks._on_point_marks is None:
                    return collection.bulk_write(*args, **kwargs)
                return marks._on_point_marks(*args, **kwargs)

        return Collection()
