"""``python -m geovid`` runs the command line."""

from geovid.cli import main

main()
