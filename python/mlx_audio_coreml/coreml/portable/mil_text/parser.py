"""Read a text MIL program into the MIL proto Program that a .mlpackage holds.

The result is the same structure coremltools writes into a package's model.mlmodel, so the
portable runtime's graph reader, executor and rewrites run a compiled model unchanged. Grammar:

    program  := 'program' '(' version ')' attrs? '{' function* '}'
    function := 'func' name ('<' opset '>')? '(' (type name),* ')' attrs? '{' op* '}' '->' '(' name,* ')' ';'
    op       := outputs '=' name '(' (param '=' arg),* ')' attrs? ';'  |  name '(' ... ')' attrs? ';'
    outputs  := (type name),+  |  '(' (type name),+ ')'
    arg      := name | literal | '(' (name | literal),* ')'      (a tuple binds a variadic parameter)
    attrs    := '[' (name '=' literal),* ']'

A function may appear once per opset (its specializations). Names must be defined before use.
"""

from __future__ import annotations

from pathlib import Path

from ....errors import MILTextError
from .._proto import MIL_pb2
from .cursor import Cursor, describe
from .grammar import proto_opset
from .lexer import SourceText, Token, tokenize
from .literals import parse_value, starts_literal
from .types import parse_type


def parse_program(text: str, path: Path | str = "model.mil") -> MIL_pb2.Program:
    """The program in `text`; MILTextError (line, column) at the first thing that is not MIL."""
    source = SourceText(text, path)
    cursor = Cursor(tokenize(source), source)
    program = MIL_pb2.Program(version=1)
    start = cursor.peek()
    if not cursor.at("program"):
        raise cursor.error(f"expected 'program', found {describe(start)}")
    cursor.next()
    cursor.expect("(", "after 'program'")
    cursor.expect_kind("number", "the program's version")
    cursor.expect(")", "after the program's version")
    for name, value in _attributes(cursor).items():
        program.attributes[name].CopyFrom(value)
    cursor.expect("{", "to open the program")
    while cursor.at("func"):
        _function(cursor, program)
    cursor.expect("}", "to close the program (or 'func' for another function)")
    if cursor.peek().kind != "end":
        raise cursor.error(f"unexpected {describe(cursor.peek())} after the program")
    if not program.functions:
        raise cursor.error("the program has no function", start)
    return program


def _attributes(cursor: Cursor, lenient: bool = False) -> dict[str, MIL_pb2.Value]:
    """`[key = literal, ...]`, or nothing. `lenient`: a value this reader cannot represent (a
    function's FlexibleShapeInformation nests tuples of dictionaries of lists) is skipped, not an
    error: nothing here reads function attributes."""
    found: dict[str, MIL_pb2.Value] = {}
    if not cursor.accept("["):
        return found
    while not cursor.at("]"):
        key = cursor.expect_kind("name", "an attribute name")
        if key.text in found:
            raise cursor.error(f"attribute '{key.text}' is given twice", key)
        cursor.expect("=", f"after attribute '{key.text}'")
        if not starts_literal(cursor):
            raise cursor.error(f"expected a literal value for attribute '{key.text}', found {describe(cursor.peek())}")
        start = cursor.index
        try:
            found[key.text] = parse_value(cursor)
        except MILTextError:
            if not lenient:
                raise
            cursor.index = start
            _skip_value(cursor)
        if not cursor.at("]"):
            cursor.expect(",", "between attributes")
    cursor.next()
    return found


def _skip_value(cursor: Cursor) -> None:
    """Move past one value: to the ',' or ']' outside every bracket it opens."""
    start = cursor.peek()
    depth = 0
    while depth > 0 or not (cursor.at(",") or cursor.at("]")):
        token = cursor.next()
        if token.kind == "end":
            raise cursor.error("an attribute value is never closed", start)
        if token.kind == "punct" and token.text in "([{<":
            depth += 1
        elif token.kind == "punct" and token.text in ")]}>":
            depth -= 1


def _function(cursor: Cursor, program: MIL_pb2.Program) -> None:
    cursor.expect("func")
    name = cursor.expect_kind("name", "a function name")
    opset = "CoreML5"  # a function without an opset is iOS15's, the first with ML Programs
    if cursor.accept("<"):
        token = cursor.expect_kind("name", "an opset such as ios17")
        opset = proto_opset(token.text) or ""
        if not opset:
            raise cursor.error(f"unknown opset '{token.text}' (expected ios15 to ios18, or ios26)", token)
        cursor.expect(">", "after the opset")
    inputs = _parameters(cursor)
    attributes = _attributes(cursor, lenient=True)
    function = _specialize(cursor, program, name, opset, inputs)
    for key, value in attributes.items():
        function.attributes[key].CopyFrom(value)
    _block(cursor, {i.name for i in inputs}, function.block_specializations[opset])  # built in place: no copy


def _specialize(
    cursor: Cursor, program: MIL_pb2.Program, name: Token, opset: str, inputs: list[MIL_pb2.NamedValueType]
) -> MIL_pb2.Function:
    """The function `name`, made on its first appearance; later ones add an opset specialization."""
    if name.text not in program.functions:
        function = program.functions[name.text]
        function.opset = opset
        function.inputs.extend(inputs)
        return function
    function = program.functions[name.text]
    if opset in function.block_specializations:
        raise cursor.error(f"function '{name.text}' is defined twice for opset {opset}", name)
    if list(function.inputs) != inputs:
        raise cursor.error(f"function '{name.text}' is specialized with different inputs", name)
    return function


def _parameters(cursor: Cursor) -> list[MIL_pb2.NamedValueType]:
    cursor.expect("(", "to open the function's inputs")
    inputs: list[MIL_pb2.NamedValueType] = []
    while not cursor.at(")"):
        inputs.append(_typed_name(cursor))
        if not cursor.at(")"):
            cursor.expect(",", "between function inputs")
    cursor.next()
    names = [i.name for i in inputs]
    if len(set(names)) != len(names):
        raise cursor.error(f"function inputs repeat a name: {names}")
    return inputs


def _typed_name(cursor: Cursor) -> MIL_pb2.NamedValueType:
    value_type = parse_type(cursor)
    name = cursor.expect_kind("name", "a value name after its type")
    return MIL_pb2.NamedValueType(name=name.text, type=value_type)


def _block(cursor: Cursor, scope: set[str], block: MIL_pb2.Block) -> None:
    """`{ op* } -> (outputs);` into `block`, every name read defined before (in `scope`, which grows)."""
    cursor.expect("{", "to open a function body")
    while not cursor.at("}"):
        _operation(cursor, scope, block.operations.add())
    cursor.next()
    cursor.expect("->", "after a function body")
    cursor.expect("(", "to open the function's outputs")
    while not cursor.at(")"):
        block.outputs.append(_reference(cursor, scope))
        if not cursor.at(")"):
            cursor.expect(",", "between outputs")
    cursor.next()
    cursor.expect(";", "after the function's outputs")


def _operation(cursor: Cursor, scope: set[str], op: MIL_pb2.Operation) -> None:
    start = cursor.peek()
    if not (cursor.peek().kind == "name" and cursor.at("(", 1) and not starts_literal(cursor)):
        op.outputs.extend(_outputs(cursor))
        cursor.expect("=", "after an op's outputs")
    op.type = cursor.expect_kind("name", "an op type").text
    cursor.expect("(", f"after op type '{op.type}'")
    while not cursor.at(")"):
        key = cursor.expect_kind("name", "a parameter name")
        if key.text in op.inputs:
            raise cursor.error(f"parameter '{key.text}' is given twice", key)
        cursor.expect("=", f"after parameter '{key.text}'")
        op.inputs[key.text].arguments.extend(_arguments(cursor, scope))
        if not cursor.at(")"):
            cursor.expect(",", "between parameters")
    cursor.next()
    for key, value in _attributes(cursor).items():
        op.attributes[key].CopyFrom(value)
    cursor.expect(";", f"after op '{op.type}'")
    for output in op.outputs:
        if output.name in scope:
            raise cursor.error(f"'{output.name}' is defined twice", start)
        scope.add(output.name)


def _outputs(cursor: Cursor) -> list[MIL_pb2.NamedValueType]:
    parenthesized = cursor.accept("(")
    outputs = [_typed_name(cursor)]
    while cursor.accept(","):
        outputs.append(_typed_name(cursor))
    if parenthesized:
        cursor.expect(")", "to close an op's outputs")
    return outputs


def _arguments(cursor: Cursor, scope: set[str]) -> list[MIL_pb2.Argument.Binding]:
    if not cursor.accept("("):
        return [_binding(cursor, scope)]
    bindings = []
    while not cursor.at(")"):
        bindings.append(_binding(cursor, scope))
        if not cursor.at(")"):
            cursor.expect(",", "between tuple items")
    cursor.next()
    return bindings


def _binding(cursor: Cursor, scope: set[str]) -> MIL_pb2.Argument.Binding:
    if starts_literal(cursor):
        return MIL_pb2.Argument.Binding(value=parse_value(cursor))
    return MIL_pb2.Argument.Binding(name=_reference(cursor, scope))


def _reference(cursor: Cursor, scope: set[str]) -> str:
    token = cursor.expect_kind("name", "a value name")
    if token.text not in scope:
        raise cursor.error(f"'{token.text}' is used before it is defined", token)
    return token.text
