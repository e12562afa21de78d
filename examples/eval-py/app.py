"""Exports of world example:eval-py/eval-py (wit/eval.wit), for componentize-py.

`wit_world.WitWorld` is generated from the WIT; a function returning
`result<T, E>` returns T, or raises `Err(E)`.

There is no Python-level sandboxing here on purpose: the expression gets the
full builtins, `open`, `os` and `__import__` included. The WebAssembly
sandbox around the component is the boundary, and the policy decides what
it may reach.
"""

# Modules are imported now, while the component is built: at run time the
# component sees no files unless granted, so it could not load them later.
import collections
import datetime
import decimal
import encodings.idna  # noqa: F401  (name lookups need it)
import fractions
import functools
import itertools
import json
import math
import os
import pathlib
import random
import re
import socket
import statistics

import wit_world
from componentize_py_types import Err

MODULES = {
    m.__name__: m
    for m in (
        collections,
        datetime,
        decimal,
        fractions,
        functools,
        itertools,
        json,
        math,
        os,
        pathlib,
        random,
        re,
        socket,
        statistics,
    )
}


class WitWorld(wit_world.WitWorld):
    def eval(self, expression: str) -> str:
        namespace: dict[str, object] = dict(MODULES)
        try:
            return repr(eval(expression, namespace))  # running the agent's code is the point
        except BaseException as exc:  # every failure, SystemExit included, is an err
            raise Err(f"{type(exc).__name__}: {exc}") from None
