"""componentize-py implementation of world `test:types/types` (see wit/types.wit).

Every export echoes its input so a host can round-trip each WIT type kind.
The module name must differ from the world name, hence `app`.
"""

import math

import wit_world
from componentize_py_types import Err, Ok, Result
from wit_world import Color, Event, Integers, Permissions, Person
from wit_world.exports import shapes


class WitWorld(wit_world.WitWorld):
    def echo_bool(self, x: bool) -> bool:
        return x

    def echo_s8(self, x: int) -> int:
        return x

    def echo_s16(self, x: int) -> int:
        return x

    def echo_s32(self, x: int) -> int:
        return x

    def echo_s64(self, x: int) -> int:
        return x

    def echo_u8(self, x: int) -> int:
        return x

    def echo_u16(self, x: int) -> int:
        return x

    def echo_u32(self, x: int) -> int:
        return x

    def echo_u64(self, x: int) -> int:
        return x

    def echo_integers(self, x: Integers) -> Integers:
        return x

    def echo_f32(self, x: float) -> float:
        return x

    def echo_f64(self, x: float) -> float:
        return x

    def echo_char(self, x: str) -> str:
        return x

    def echo_string(self, x: str) -> str:
        return x

    def echo_list(self, x: list[int]) -> list[int]:
        return x

    def echo_bytes(self, x: bytes) -> bytes:
        return x

    def echo_person(self, x: Person) -> Person:
        return x

    def echo_people(self, x: list[Person]) -> list[Person]:
        return x

    def echo_tuple(self, x: tuple[int, str, bool]) -> tuple[int, str, bool]:
        return x

    def echo_option(self, x: str | None) -> str | None:
        return x

    def echo_option_option(self, x: object) -> object:
        # option<option<T>> is None | Some(None) | Some(value) in componentize-py.
        return x

    # A `result` return is "return the ok value or raise Err(err value)".
    def echo_result(self, x: Result[int, str]) -> int:
        if isinstance(x, Ok):
            return x.value
        raise Err(x.value)

    def echo_result_no_ok(self, x: Result[None, str]) -> None:
        if isinstance(x, Err):
            raise Err(x.value)

    def echo_result_no_err(self, x: Result[str, None]) -> str:
        if isinstance(x, Ok):
            return x.value
        raise Err(None)

    def echo_variant(self, x: Event) -> Event:
        return x

    def echo_enum(self, x: Color) -> Color:
        return x

    def echo_flags(self, x: Permissions) -> Permissions:
        return x

    def checked_div(self, a: int, b: int) -> int:
        if b == 0:
            raise Err("division by zero")
        # Truncating division, like C/Rust (Python's // floors); clamp the one
        # overflow case (-2**31 / -1) into range.
        q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
        return max(-(2**31), min(2**31 - 1, q))

    def echo_many(
        self, a: int, b: str, c: bool, d: bytes, e: Color | None
    ) -> tuple[int, str, bool, bytes, Color | None]:
        return (a, b, c, d, e)

    def noop(self) -> None:
        return None


class Shapes(wit_world.exports.Shapes):
    def area(self, s: shapes.Shape) -> float:
        if isinstance(s, shapes.Shape_Circle):
            return math.pi * s.value * s.value
        if isinstance(s, shapes.Shape_Rectangle):
            return s.value.width * s.value.height
        return 0.0
