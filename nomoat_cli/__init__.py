"""`nomoat`: the command-line client of a nomoat hub, speaking only its REST API (no Django, no hub code)."""

__version__ = "0.1.0"
