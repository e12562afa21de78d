"""componentize-py implementation of world `test:eval/eval-py` (wit/eval.wit)."""

import builtins
import math

import wit_world
from componentize_py_types import Err
from wit_world import EvalRequest

# Names the expression may use. `__builtins__` is replaced so that open(),
# __import__() and friends are not reachable by name; the real isolation is
# the WebAssembly sandbox around this component, not this namespace.
SAFE_BUILTINS = {
    name: getattr(builtins, name)
    for name in (
        "abs",
        "all",
        "any",
        "bool",
        "divmod",
        "float",
        "int",
        "len",
        "list",
        "max",
        "min",
        "pow",
        "range",
        "repr",
        "reversed",
        "round",
        "sorted",
        "str",
        "sum",
        "tuple",
    )
}
MATH = {name: getattr(math, name) for name in dir(math) if not name.startswith("_")}


class WitWorld(wit_world.WitWorld):
    def eval(self, req: EvalRequest) -> str:
        namespace: dict[str, object] = {"__builtins__": SAFE_BUILTINS, **MATH}
        for var in req.variables or []:
            namespace[var.name] = var.value
        try:
            return str(eval(req.expression, namespace))  # evaluating input is the point
        except Exception as exc:  # every failure becomes err(...)
            raise Err(f"{type(exc).__name__}: {exc}") from None
