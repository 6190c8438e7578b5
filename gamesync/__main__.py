"""``python -m gamesync``: the same CLI as the ``gamesync`` command."""

from .cli import main

raise SystemExit(main())
