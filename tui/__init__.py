"""Textual terminal UI for browsing geovid runs; a client of the library (``make_app``)."""
