"""The store's schema migrations (Alembic), run by `blindgate.storage.migrate`.

``versions/`` holds one module per revision, oldest first. ``0001`` is the schema of
blindgate 0.1.0, the last release without migrations, frozen as it was; each later revision
changes it, and `blindgate.storage.schema` always equals the result. A new revision copies
``script.py.mako``'s shape, takes the next number and names the previous one in
``down_revision``; tests/storage checks that a store created fresh and one upgraded from
0.1.0 agree, table by table and index by index.
"""
