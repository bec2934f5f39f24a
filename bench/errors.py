"""Exceptions with messages a user can act on (the CLI prints them without a traceback)."""


class BenchError(Exception):
    """Base class: anything the user can fix (bad name, missing file, bad input)."""


class UnknownNameError(BenchError, KeyError):
    def __init__(self, kind: str, name: str, known):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known {kind}s: {', '.join(self.known) or '(none)'}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class WeightFileError(BenchError):
    """A weight file is missing or does not match its recorded checksum."""


class ShapeError(BenchError, ValueError):
    """A tensor does not have the shape an interface promises."""
