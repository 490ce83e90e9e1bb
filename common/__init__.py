"""What every layer agrees on, below everything else: the result-log record (columns, types,
meanings), a sweep folder's layout, storage (local paths and URIs, atomic writes), the exceptions
a user can fix, and the provenance each row carries.

Imports neither torch nor Ray (pyarrow only where a file is read or written), so the launcher,
the analysis and a notebook can all load it cheaply. Data flows one way: search_spaces ->
trainables -> sweep -> analysis, each importing `common` and nothing above itself.
"""
