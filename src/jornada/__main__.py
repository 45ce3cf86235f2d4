"""`python -m jornada` runs the command line."""

from jornada.cli import main

main()
