"""Text MIL: the program inside a compiled model (.mlmodelc), read into the MIL proto a .mlpackage holds.

`parse_program(text)` gives a `MIL_pb2.Program`, so a compiled model runs through the same graph
reader, executor and rewrites as a package; `read_compiled(folder)` opens a whole .mlmodelc
(model.mil, weights/, metadata.json). Modules: lexer (tokens with offsets; line and column on
error), cursor (look-ahead and located errors), types, literals, parser, cache (parsed programs
kept as protos), compiled; grammar holds the vocabulary that convert/mil_text.py writes with.
"""

from .compiled import is_compiled_model, read_compiled
from .parser import parse_program

__all__ = ["is_compiled_model", "parse_program", "read_compiled"]
