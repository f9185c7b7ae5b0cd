"""Inlining of simple pure functions into generated loops, only where it provably changes nothing.

A function is inlined when all of these hold, so that evaluating its expression in the loop is exactly what
calling it would do:

- it is a plain Python function of one positional parameter, with no closure, defaults or keyword-only
  parameters, no ``functools.partial`` and no bound keyword arguments;
- its body is a single ``return <expression>`` (or it is a ``lambda``) whose only name is that parameter, so
  neither globals nor builtins (which can be rebound later) are read, and the expression opens no scope
  (no lambda, comprehension, walrus, yield or await);
- the source we parsed compiles to the *same bytecode and constants* as the function's own code object, so an
  edited file or a decorator can never make us inline something other than what would run.

The results are the same; what differs is that the function is never called: a traceback from an inlined
expression has no frame for it (the error note still names the stage), and breakpoints, coverage and profilers
do not see it run. ``compile(inline=False)`` turns inlining off.
"""

from __future__ import annotations
import __future__

import ast
import inspect
import textwrap
import types
from typing import Any

_FORBIDDEN = (
    ast.Lambda,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.NamedExpr,
    ast.Await,
    ast.Yield,
    ast.YieldFrom,
    ast.Starred,
)
_CACHE: dict[types.CodeType, str | None] = {}
_FUTURE_FLAGS = 0
for _name in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _name).compiler_flag


def inline_expression(fn: Any, var: str) -> str | None:
    """Python source of ``fn``'s body with its parameter renamed to ``var``, or None if it cannot be inlined."""
    if type(fn) is not types.FunctionType:
        return None
    code = fn.__code__
    if code not in _CACHE:
        _CACHE[code] = _find_expression(fn)
    expr = _CACHE[code]
    if expr is None:
        return None
    param = code.co_varnames[0]
    tree = ast.parse(expr, mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == param:
            node.id = var
    return f"({ast.unparse(tree.body)})"


def _find_expression(fn: types.FunctionType) -> str | None:
    code = fn.__code__
    simple = (
        code.co_argcount == 1
        and code.co_posonlyargcount == 0
        and code.co_kwonlyargcount == 0
        and not code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS | inspect.CO_GENERATOR)
        and not code.co_flags & (inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR | inspect.CO_ITERABLE_COROUTINE)
        and fn.__closure__ is None
        and not code.co_freevars
        and not code.co_cellvars
        and fn.__defaults__ is None
        and not fn.__kwdefaults__
    )
    if not simple:
        return None
    try:
        source = textwrap.dedent(inspect.getsource(code))  # the code's own lines: never a __wrapped__ function
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    param = code.co_varnames[0]
    for node in ast.walk(tree):
        expr = _candidate(node, code.co_name)
        if expr is None or not _pure(expr, param):
            continue
        if _same_code(node, code):
            return ast.unparse(expr)
    return None


def _candidate(node: ast.AST, name: str) -> ast.expr | None:
    if isinstance(node, ast.Lambda) and name == "<lambda>":  # name: the code object's co_name
        return node.body
    if isinstance(node, ast.FunctionDef) and node.name == name and not node.decorator_list:
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # a docstring
        if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
            return body[0].value
    return None


def _pure(expr: ast.expr, param: str) -> bool:
    for node in ast.walk(expr):
        if isinstance(node, _FORBIDDEN):
            return False
        if isinstance(node, ast.Name) and node.id != param:
            return False
    return True


def _same_code(node: ast.AST, code: types.CodeType) -> bool:
    """Does ``node`` (a lambda or def found in the source) compile to exactly ``code``?"""
    flags = code.co_flags & _FUTURE_FLAGS  # compile under the same __future__ features as the original
    try:
        if isinstance(node, ast.Lambda):
            module: ast.AST = ast.Expression(body=node)
            mode = "eval"
        else:
            module = ast.Module(body=[node], type_ignores=[])
            mode = "exec"
        compiled = compile(ast.fix_missing_locations(module), code.co_filename, mode, flags=flags, dont_inherit=True)
    except (SyntaxError, ValueError, TypeError):
        return False
    inner = [c for c in compiled.co_consts if isinstance(c, types.CodeType)]
    return any(_code_key(c) == _code_key(code) for c in inner)


def _code_key(c: types.CodeType) -> tuple[Any, ...]:
    # CO_NESTED only says where the function was defined; it does not change what the code does
    consts = tuple(_const_key(k) for k in c.co_consts)
    return (c.co_code, consts, c.co_names, c.co_varnames, c.co_argcount, c.co_flags & ~inspect.CO_NESTED)


def _const_key(value: Any) -> Any:
    """Constants compared by repr, which tells ``1``, ``1.0`` and ``True`` apart (and ``0.0`` from ``-0.0``),
    where ``==`` does not. (No nested code object gets here: lambdas and comprehensions are never inlined.)"""
    if isinstance(value, (tuple, frozenset)):
        return (type(value).__name__, tuple(_const_key(v) for v in value))
    return repr(value)
