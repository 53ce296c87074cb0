"""Screens of the geovid TUI: runs table, one run, compare, new job / job progress, help."""
