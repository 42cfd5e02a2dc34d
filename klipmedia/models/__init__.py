"""Model files that ship with klipmedia (see README.md beside them)."""
