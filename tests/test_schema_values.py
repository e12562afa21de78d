"""WIT types -> JSON Schema, and JSON <-> component values, on real components.

The engine promises that its JSON Schemas (src/schema.rs) and its JSON
encoding (src/values.rs) are twins: whatever the input schema accepts is
accepted by `call`, whatever `call` rejects the schema rejects too, and every
returned value matches the output schema. These tests pin the exact schemas
and check that promise with a real Draft 2020-12 validator.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

SHAPES = "test:types/shapes@0.1.0"
MATH = "test:iface/math@0.1.0"

S32_MIN, S32_MAX = -(2**31), 2**31 - 1
S64_MIN, S64_MAX = -(2**63), 2**63 - 1
U64_MAX = 2**64 - 1
F32_MAX = 3.4028235e38  # the shortest decimal that is f32::MAX
EMOJI = "\U0001f600"  # outside the BMP: two UTF-16 units, one code point


# --- helpers -------------------------------------------------------------------------------------


@dataclass
class Loaded:
    """A compiled component and its `describe()` output, keyed by (interface, function)."""

    component: Any
    describe_json: str
    exports: dict[tuple[str | None, str], dict[str, Any]]

    def info(self, function: str, interface: str | None = None) -> dict[str, Any]:
        return self.exports[(interface, function)]

    def call(self, function: str, args: Any, interface: str | None = None) -> Any:
        """Calls with `args` serialised to JSON (raw text goes through `component.call`)."""
        return self.component.start(interface, function, json.dumps(args)).finish()


@pytest.fixture(scope="module")
def load(engine: Any, components: dict[str, Path]) -> Callable[[str], Loaded]:
    """Compiles (or takes from the shared cache) a fixture once per module."""
    loaded: dict[str, Loaded] = {}

    def get(name: str) -> Loaded:
        if name not in loaded:
            wasm = components[name].read_bytes()
            component = engine.compile(wasm)
            text = component.describe(wasm)
            infos = {(i["interface"], i["function"]): i for i in json.loads(text)}
            loaded[name] = Loaded(component, text, infos)
        return loaded[name]

    return get


@pytest.fixture(scope="module")
def types(load: Callable[[str], Loaded]) -> Loaded:
    return load("types")


def integer(lo: int, hi: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": lo, "maximum": hi}


F32_LIMIT = 3.4028235677973366e38  # half an ULP above f32::MAX: rounds to infinity


def floating(fmt: str) -> dict[str, Any]:
    number: dict[str, Any] = {"type": "number"}
    if fmt == "f32":
        number |= {"exclusiveMinimum": -F32_LIMIT, "exclusiveMaximum": F32_LIMIT}
    return {
        "anyOf": [number, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}],
        "format": fmt,
    }


def single_key(name: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: payload},
        "required": [name],
        "additionalProperties": False,
        **extra,
    }


def nullable(inner: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [{"type": "null"}, inner]}


def params(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """The input schema of a function: one property per parameter."""
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
        "additionalProperties": False,
    }


def returns(schema: dict[str, Any]) -> dict[str, Any]:
    """The output schema of a function: its value under `result`."""
    return {"type": "object", "properties": {"result": schema}, "required": ["result"]}


def valid(schema: dict[str, Any], instance: Any) -> bool:
    return Draft202012Validator(schema).is_valid(instance)


def strict(v: Any) -> Any:
    """A comparable form that tells bool, int and float apart (True == 1 == 1.0 in Python) and -0.0 from 0.0."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int):
        return ("int", v)
    if isinstance(v, float):
        return ("float", repr(v))
    if isinstance(v, list):
        return ("list", [strict(x) for x in v])
    if isinstance(v, dict):
        return ("dict", sorted((k, strict(x)) for k, x in v.items()))
    return v


# --- expected schemas ----------------------------------------------------------------------------

INT_TYPES = {
    "s8": (-128, 127),
    "s16": (-32768, 32767),
    "s32": (S32_MIN, S32_MAX),
    "s64": (-9223372036854775808, 9223372036854775807),
    "u8": (0, 255),
    "u16": (0, 65535),
    "u32": (0, 4294967295),
    "u64": (0, 18446744073709551615),
}
CHAR = {"type": "string", "minLength": 1, "maxLength": 1}
ADDRESS = {
    "type": "object",
    "properties": {
        "street": {"type": "string", "description": "Street and number."},
        "city": {"type": "string", "description": "City name."},
        "zip": {**nullable({"type": "string"}), "description": "Postal code, if known."},
    },
    "required": ["street", "city"],  # the option field is not required
    "additionalProperties": False,
    "title": "address",
    # The field's doc comment wins over the record type's own.
    "description": "Where the person lives.",
}
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Full name."},
        "age": {**integer(0, 255), "description": "Age in years."},
        "address": ADDRESS,
        "tags": {"type": "array", "items": {"type": "string"}, "description": "Free-form labels."},
    },
    "required": ["name", "age", "address", "tags"],
    "additionalProperties": False,
    "title": "person",
    "description": "A person: a record that nests another record and a list.",
}
INTEGERS = {
    "type": "object",
    "properties": {
        f"a-{t}": {
            **integer(*INT_TYPES[t]),
            "description": f"{'Signed' if t[0] == 's' else 'Unsigned'} {t[1:]}-bit.",
        }
        for t in ("s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64")
    },
    "required": [f"a-{t}" for t in ("s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64")],
    "additionalProperties": False,
    "title": "integers",
    "description": "One field of every integer type.",
}
COLOR = {
    "type": "string",
    "enum": ["red", "green", "blue"],
    "description": "A primary color.\nred: Red light.\ngreen: Green light.\nblue: Blue light.",
    "title": "color",
}
PERMISSIONS = {
    "type": "array",
    "items": {"type": "string", "enum": ["read", "write", "exec"]},
    "uniqueItems": True,
    "description": "File-style permission bits.\nread: May read.\nwrite: May write.\nexec: May execute.",
    "title": "permissions",
}
EVENT = {
    "oneOf": [
        single_key("started", {"type": "null"}, description="Work started (no payload)."),
        single_key("progress", integer(0, 255), description="Progress in percent."),
        single_key("message", {"type": "string"}, description="A log message."),
        single_key("stopped", {"type": "null"}, description="Work finished (no payload)."),
    ],
    "title": "event",
    "description": "Something that happened: cases with and without payloads.",
}
TUPLE = {
    "type": "array",
    "prefixItems": [integer(S32_MIN, S32_MAX), {"type": "string"}, {"type": "boolean"}],
    "minItems": 3,
    "maxItems": 3,
    "items": False,
}
RESULT_S32_STRING = {
    "oneOf": [single_key("ok", integer(S32_MIN, S32_MAX)), single_key("err", {"type": "string"})]
}

# function -> schema of its single parameter `x`, which is also the schema of its result.
ECHO_SCHEMAS: dict[str, dict[str, Any]] = {
    "echo-bool": {"type": "boolean"},
    **{f"echo-{t}": integer(lo, hi) for t, (lo, hi) in INT_TYPES.items()},
    "echo-integers": INTEGERS,
    "echo-f32": floating("f32"),
    "echo-f64": floating("f64"),
    "echo-char": CHAR,
    "echo-string": {"type": "string"},
    "echo-list": {"type": "array", "items": integer(S32_MIN, S32_MAX)},
    "echo-bytes": {"type": "array", "items": integer(0, 255)},
    "echo-person": PERSON,
    "echo-people": {"type": "array", "items": PERSON},
    "echo-tuple": TUPLE,
    "echo-option": nullable({"type": "string"}),
    # option<option<T>>: `null` is none, so some(...) of a nullable type is wrapped.
    "echo-option-option": nullable(single_key("some", nullable(integer(S32_MIN, S32_MAX)))),
    "echo-result": RESULT_S32_STRING,
    "echo-result-no-ok": {
        "oneOf": [single_key("ok", {"type": "null"}), single_key("err", {"type": "string"})]
    },
    "echo-result-no-err": {
        "oneOf": [single_key("ok", {"type": "string"}), single_key("err", {"type": "null"})]
    },
    "echo-variant": EVENT,
    "echo-enum": COLOR,
    "echo-flags": PERMISSIONS,
}


# --- schemas -------------------------------------------------------------------------------------


@pytest.mark.parametrize("function", sorted(ECHO_SCHEMAS))
def test_echo_schema_is_exact(types: Loaded, function: str) -> None:
    """Each echo function's input and output schema is exactly the JSON Schema of its WIT type."""
    info = types.info(function)
    schema = ECHO_SCHEMAS[function]
    required = [] if function in ("echo-option", "echo-option-option") else ["x"]
    assert info["input_schema"] == params({"x": schema}, required)
    assert info["output_schema"] == returns(schema)
    assert info["unsupported"] is None


@pytest.mark.parametrize(("t", "bounds"), INT_TYPES.items())
def test_integer_schemas_carry_true_bounds(types: Loaded, t: str, bounds: tuple[int, int]) -> None:
    """Integer schemas carry the exact min/max, even past 2**53 (u64 max, s64 min)."""
    prop = types.info(f"echo-{t}")["input_schema"]["properties"]["x"]
    assert (prop["type"], prop["minimum"], prop["maximum"]) == ("integer", *bounds)
    assert type(prop["minimum"]) is int and type(prop["maximum"]) is int


def test_u64_and_s64_extremes_are_exact_integers_in_the_json_text(types: Loaded) -> None:
    """The big bounds are written as exact integers, not as floats that a client would round."""
    assert '"maximum":18446744073709551615' in types.describe_json
    assert '"minimum":-9223372036854775808' in types.describe_json
    assert "e+19" not in types.describe_json and "e19" not in types.describe_json


def test_multi_param_functions(types: Loaded) -> None:
    """Several parameters become several properties; an option parameter is not required."""
    div = types.info("checked-div")
    assert div["input_schema"] == params({"a": integer(S32_MIN, S32_MAX), "b": integer(S32_MIN, S32_MAX)})
    assert div["output_schema"] == returns(RESULT_S32_STRING)
    many = types.info("echo-many")
    bytes_schema = {"type": "array", "items": integer(0, 255)}
    assert many["input_schema"] == params(
        {
            "a": integer(S32_MIN, S32_MAX),
            "b": {"type": "string"},
            "c": {"type": "boolean"},
            "d": bytes_schema,
            "e": nullable(COLOR),
        },
        required=["a", "b", "c", "d"],
    )
    assert many["output_schema"] == returns(
        {
            "type": "array",
            "prefixItems": [
                integer(S32_MIN, S32_MAX),
                {"type": "string"},
                {"type": "boolean"},
                bytes_schema,
                nullable(COLOR),
            ],
            "minItems": 5,
            "maxItems": 5,
            "items": False,
        }
    )


def test_no_params_no_result(types: Loaded) -> None:
    """A function without parameters takes an empty object; one without a result has no output schema."""
    noop = types.info("noop")
    assert noop["input_schema"] == params({})
    assert noop["output_schema"] is None
    assert noop["description"] == "Does nothing: no parameters, no result."


def test_exported_interface_function(types: Loaded) -> None:
    """`shapes#area` is listed under its interface, with the variant/record schema of its parameter."""
    area = types.info("area", SHAPES)
    f64 = floating("f64")
    dimensions = {
        "type": "object",
        "properties": {"width": f64, "height": f64},
        "required": ["width", "height"],
        "additionalProperties": False,
        "title": "dimensions",  # no docs: the fixture cannot carry docs inside another package's interface
    }
    shape = {
        "oneOf": [
            single_key("circle", f64),
            single_key("rectangle", dimensions),
            single_key("point", {"type": "null"}),
        ],
        "title": "shape",
    }
    assert area["input_schema"] == params({"s": shape})
    assert area["output_schema"] == returns(f64)


def test_interface_export_docs_describe_its_functions(types: Loaded) -> None:
    """`area` has no docs of its own, so it is described by the docs of the `export shapes;` line."""
    assert types.info("area", SHAPES)["description"] == "Geometry helpers."


def test_tool_listing_skips_toolchain_plumbing(types: Loaded) -> None:
    """Every WIT export is listed, and componentize-py's `exports` interface is not."""
    expected = {(None, f) for f in ECHO_SCHEMAS} | {
        (None, "checked-div"),
        (None, "echo-many"),
        (None, "noop"),
        (SHAPES, "area"),
    }
    assert set(types.component.functions()) == expected
    assert set(types.exports) == expected
    assert all(info["unsupported"] is None for info in types.exports.values())


def test_wit_docs_become_descriptions_and_titles(types: Loaded) -> None:
    """Function, type, field and case docs from the fixture's WIT appear in the schemas."""
    assert types.info("echo-s8")["description"] == "Returns `x`."
    assert (
        types.info("checked-div")["description"] == 'Integer division: err("division by zero") when `b` is 0.'
    )
    person = types.info("echo-person")["input_schema"]["properties"]["x"]
    assert (person["title"], person["description"]) == ("person", PERSON["description"])
    assert person["properties"]["address"]["properties"]["zip"]["description"] == "Postal code, if known."
    event = types.info("echo-variant")["input_schema"]["properties"]["x"]
    assert [b["description"] for b in event["oneOf"]][1] == "Progress in percent."


@pytest.mark.parametrize(
    ("function", "type_doc", "case_doc"),
    [
        ("echo-enum", "A primary color.", "red: Red light."),
        ("echo-flags", "File-style permission bits.", "read: May read."),
    ],
)
def test_enum_and_flags_case_docs_are_kept(
    types: Loaded, function: str, type_doc: str, case_doc: str
) -> None:
    """Docs of enum cases and flags survive next to the type's own doc comment."""
    description = types.info(function)["input_schema"]["properties"]["x"]["description"]
    assert type_doc in description
    assert case_doc in description


@pytest.mark.parametrize(
    ("fixture", "interface", "function", "inputs", "output"),
    [
        (
            "arith",
            None,
            "add",
            {"a": integer(S32_MIN, S32_MAX), "b": integer(S32_MIN, S32_MAX)},
            integer(S32_MIN, S32_MAX),
        ),
        ("arith", None, "add-u64", {"a": integer(0, U64_MAX), "b": integer(0, U64_MAX)}, integer(0, U64_MAX)),
        ("arith", None, "negate", {"x": integer(S64_MIN, S64_MAX)}, integer(S64_MIN, S64_MAX)),
        ("arith", None, "inc-u8", {"x": integer(0, 255)}, integer(0, 255)),
        ("arith", None, "is-even", {"x": integer(0, 2**32 - 1)}, {"type": "boolean"}),
        ("arith", None, "half", {"x": floating("f64")}, floating("f64")),
        ("arith", None, "next-char", {"c": CHAR}, CHAR),
        ("strings", None, "echo", {"s": {"type": "string"}}, {"type": "string"}),
        ("strings", None, "length", {"s": {"type": "string"}}, integer(0, 2**32 - 1)),
        ("iface", MATH, "double", {"x": integer(S32_MIN, S32_MAX)}, integer(S32_MIN, S32_MAX)),
    ],
)
def test_hand_written_components_schemas(
    load: Callable[[str], Loaded],
    fixture: str,
    interface: str | None,
    function: str,
    inputs: dict[str, Any],
    output: dict[str, Any],
) -> None:
    """Components without WIT docs get the bare schemas: no title, no description."""
    info = load(fixture).info(function, interface)
    assert info["input_schema"] == params(inputs)
    assert info["output_schema"] == returns(output)
    assert info["description"] is None


@pytest.mark.parametrize("fixture", ["types", "arith", "strings", "iface"])
def test_every_schema_is_a_valid_draft_2020_12_schema(load: Callable[[str], Loaded], fixture: str) -> None:
    """Every input and output schema passes the Draft 2020-12 meta-schema."""
    for info in load(fixture).exports.values():
        Draft202012Validator.check_schema(info["input_schema"])
        if info["output_schema"] is not None:
            Draft202012Validator.check_schema(info["output_schema"])


# --- agreement: samples validate, round-trip unchanged, and the result validates ----------------

PERSON_SAMPLE = {
    "name": "Zo\u00eb \u5c71\u7530",
    "age": 255,
    "address": {"street": "1 Rue de l'\u00c9glise", "city": "Montr\u00e9al", "zip": "H2X 1Y4"},
    "tags": ["", EMOJI, "a,b"],
}
NO_ZIP = {"name": "", "age": 0, "address": {"street": "", "city": "", "zip": None}, "tags": []}

ECHO_SAMPLES: dict[str, list[Any]] = {
    "echo-bool": [True, False],
    **{f"echo-{t}": [0, lo, hi, lo // 2 + 1, hi // 2] for t, (lo, hi) in INT_TYPES.items()},
    "echo-integers": [
        {f"a-{t}": v for t, v in zip(INT_TYPES, vals, strict=True)}
        for vals in ([0] * 8, [lo for lo, _ in INT_TYPES.values()], [hi for _, hi in INT_TYPES.values()])
    ],
    # f32 samples are the shortest decimals of f32 values: they come back digit for digit.
    "echo-f32": [
        0.0,
        -0.0,
        1.5,
        0.1,
        F32_MAX,
        -F32_MAX,
        1e-45,
        1.1754944e-38,
        "NaN",
        "Infinity",
        "-Infinity",
    ],
    "echo-f64": [
        0.0,
        -0.0,
        0.1,
        -2.5,
        1e21,
        1.7976931348623157e308,
        -1.7976931348623157e308,
        5e-324,
        2.2250738585072014e-308,
        "NaN",
        "Infinity",
        "-Infinity",
    ],
    "echo-char": ["a", "\u00e9", "\u20ac", EMOJI, "\U0010ffff", "\u0000", "\uffff", '"'],
    "echo-string": [
        "",
        "hello",
        "h\u00e9llo w\u00f6rld \u65e5\u672c\u8a9e",
        EMOJI + "\U0001f44d\U0001f3fd",  # an emoji with a skin-tone modifier: several code points
        "nul\u0000inside",
        'quotes " and \\ backslash\nnewline\ttab',
        "x" * 100_000,
    ],
    "echo-list": [[], [0], [S32_MIN, S32_MAX, -1], list(range(-500, 500))],
    "echo-bytes": [[], [0, 255], list(range(256))],
    "echo-person": [PERSON_SAMPLE, NO_ZIP],
    "echo-people": [[], [PERSON_SAMPLE, NO_ZIP]],
    "echo-tuple": [[0, "", False], [S32_MAX, EMOJI, True], [S32_MIN, "x", False]],
    "echo-option": [None, "", "some text", EMOJI],
    "echo-option-option": [None, {"some": None}, {"some": 0}, {"some": S32_MIN}, {"some": S32_MAX}],
    "echo-result": [{"ok": 0}, {"ok": S32_MIN}, {"ok": S32_MAX}, {"err": ""}, {"err": EMOJI}],
    "echo-result-no-ok": [{"ok": None}, {"err": "bad"}],
    "echo-result-no-err": [{"ok": ""}, {"ok": "fine"}, {"err": None}],
    "echo-variant": [
        {"started": None},
        {"progress": 0},
        {"progress": 255},
        {"message": ""},
        {"message": EMOJI},
        {"stopped": None},
    ],
    "echo-enum": ["red", "green", "blue"],
    # Flags come back in declaration order, so samples use that order.
    "echo-flags": [[], ["read"], ["write", "exec"], ["read", "write", "exec"]],
}
ECHO_CASES = [
    pytest.param(function, value, id=f"{function}-{i}")
    for function, values in ECHO_SAMPLES.items()
    for i, value in enumerate(values)
]


def test_every_echo_function_has_samples() -> None:
    """The round-trip table below covers every echo function of the fixture."""
    assert set(ECHO_SAMPLES) == set(ECHO_SCHEMAS)


def assert_agrees(
    loaded: Loaded, function: str, args: Any, expected: Any, interface: str | None = None
) -> Any:
    """Args valid for the input schema; the call returns `expected`; the result valid for the output schema."""
    info = loaded.info(function, interface)
    Draft202012Validator(info["input_schema"]).validate(args)
    out = loaded.call(function, args, interface)
    is_err = isinstance(expected, dict) and set(expected) == {"err"}
    assert (out.status, out.error if not is_err else None) == ("err" if is_err else "ok", None)
    value = json.loads(out.value_json)
    assert strict(value) == strict(expected)
    Draft202012Validator(info["output_schema"]).validate({"result": value})
    return value


@pytest.mark.parametrize(("function", "value"), ECHO_CASES)
def test_echo_round_trip(types: Loaded, function: str, value: Any) -> None:
    """A sample value validates against the input schema, comes back unchanged, and validates against the output schema."""
    assert_agrees(types, function, {"x": value}, value)


def test_result_err_is_status_err_with_value(types: Loaded) -> None:
    """An `err` result is status "err": `error` carries the err string, `value_json` the whole result."""
    out = types.call("checked-div", {"a": 7, "b": 0})
    assert out.status == "err"
    assert out.error == "division by zero"
    assert json.loads(out.value_json) == {"err": "division by zero"}
    Draft202012Validator(types.info("checked-div")["output_schema"]).validate(
        {"result": {"err": "division by zero"}}
    )
    ok = types.call("checked-div", {"a": -7, "b": 2})
    assert (ok.status, json.loads(ok.value_json), ok.error) == ("ok", {"ok": -3}, None)


def test_result_err_without_payload(types: Loaded) -> None:
    """An `err` with no payload is status "err" with a generic message and `{"err": null}`."""
    out = types.call("echo-result-no-err", {"x": {"err": None}})
    assert (out.status, json.loads(out.value_json)) == ("err", {"err": None})
    assert out.error == "the function returned an error with no value"


def test_multi_param_round_trip(types: Loaded) -> None:
    """Several parameters of different kinds arrive intact; an omitted option parameter is none."""
    args = {"a": S32_MIN, "b": EMOJI, "c": True, "d": [0, 255], "e": "blue"}
    assert_agrees(types, "echo-many", args, [S32_MIN, EMOJI, True, [0, 255], "blue"])
    assert_agrees(types, "echo-many", {"a": 0, "b": "", "c": False, "d": []}, [0, "", False, [], None])


def test_omitted_options_are_none(types: Loaded) -> None:
    """An omitted option field or parameter is none, and comes back as an explicit null."""
    person = {"name": "n", "age": 1, "address": {"street": "s", "city": "c"}, "tags": []}
    back = assert_agrees(
        types, "echo-person", {"x": person}, {**person, "address": {**person["address"], "zip": None}}
    )
    assert back["address"]["zip"] is None
    assert_agrees(types, "echo-option", {}, None)
    assert_agrees(types, "echo-option-option", {}, None)


def test_integers_accept_integral_floats(types: Loaded) -> None:
    """2.0 is an integer for JSON Schema, and the engine accepts it too."""
    assert valid(types.info("echo-u8")["input_schema"], {"x": 2.0})
    out = types.call("echo-u8", {"x": 2.0})
    assert (out.status, out.value_json) == ("ok", "2")
    assert types.call("echo-s64", {"x": -4e3}).value_json == "-4000"


def test_flags_come_back_in_declaration_order(types: Loaded) -> None:
    """Flags are a set: any order is accepted and the result lists them in WIT order."""
    out = types.call("echo-flags", {"x": ["exec", "read"]})
    assert (out.status, json.loads(out.value_json)) == ("ok", ["read", "exec"])


def test_f32_is_rounded_to_nearest_and_printed_shortest(types: Loaded) -> None:
    """A decimal that is not an f32 comes back as the shortest decimal of the nearest f32."""
    assert json.loads(types.call("echo-f32", {"x": 3.4028234663852886e38}).value_json) == F32_MAX
    assert json.loads(types.call("echo-f32", {"x": 1.100000023841858}).value_json) == 1.1
    back = json.loads(types.call("echo-f32", {"x": -0.0}).value_json)
    assert math.copysign(1.0, back) == -1.0


@pytest.mark.parametrize(
    ("function", "args", "expected"),
    [
        ("area", {"s": {"point": None}}, 0.0),
        ("area", {"s": {"rectangle": {"width": 2.5, "height": 4.0}}}, 10.0),
        ("area", {"s": {"circle": 1.0}}, math.pi),
        ("area", {"s": {"circle": "Infinity"}}, "Infinity"),
    ],
)
def test_interface_function_round_trip(types: Loaded, function: str, args: Any, expected: Any) -> None:
    """The exported interface's function is called by interface name and agrees with its schemas."""
    assert_agrees(types, function, args, expected, SHAPES)


@pytest.mark.parametrize(
    ("fixture", "interface", "function", "args", "expected"),
    [
        ("arith", None, "add-u64", {"a": U64_MAX - 1, "b": 1}, U64_MAX),
        ("arith", None, "negate", {"x": S64_MAX}, -S64_MAX),
        ("arith", None, "inc-u8", {"x": 255}, 0),
        ("arith", None, "is-even", {"x": 4294967294}, True),
        ("arith", None, "half", {"x": "-Infinity"}, "-Infinity"),
        ("arith", None, "next-char", {"c": "\ud7ff"}, "\ue000"),
        ("arith", None, "next-char", {"c": "\U0010ffff"}, "\u0000"),
        ("strings", None, "echo", {"s": EMOJI * 3 + "\u00e9"}, EMOJI * 3 + "\u00e9"),
        ("strings", None, "length", {"s": EMOJI * 3 + "\u00e9"}, 4),
        ("strings", None, "echo", {"s": "y" * 200_000}, "y" * 200_000),
        ("iface", MATH, "double", {"x": -21}, -42),
    ],
)
def test_hand_written_components_agree(
    load: Callable[[str], Loaded],
    fixture: str,
    interface: str | None,
    function: str,
    args: Any,
    expected: Any,
) -> None:
    """Calls to the WAT fixtures validate, return the expected value, and the value validates."""
    assert_agrees(load(fixture), function, args, expected, interface)


def test_null_arguments_for_a_no_param_function(types: Loaded) -> None:
    """`null` args to a no-parameter function are taken as `{}`: a deliberate leniency beyond the schema."""
    assert not valid(types.info("noop")["input_schema"], None)
    out = types.call("noop", None)
    assert (out.status, out.value_json) == ("ok", None)
    out = types.call("noop", {})
    assert (out.status, out.value_json) == ("ok", None)


# --- rejection: invalid_arguments with a precise message, and the schema rejects too ---------------


def out_of_range_cases() -> list[Any]:
    cases = []
    for t, (lo, hi) in INT_TYPES.items():
        above = {"x": hi + 1}, f"args.x: {hi + 1} is out of range for {t}"
        below = {"x": lo - 1}, f"args.x: {lo - 1} is out of range for {t}"
        cases.append(pytest.param(f"echo-{t}", *above, id=f"{t}-above"))
        cases.append(pytest.param(f"echo-{t}", *below, id=f"{t}-below"))
    return cases


PERSON_OK = {"name": "n", "age": 1, "address": {"street": "s", "city": "c"}, "tags": []}
EVENT_KEYS = "started, progress, message, stopped"
REJECTIONS = [
    *out_of_range_cases(),
    # paths inside records and lists
    pytest.param(
        "echo-person",
        {"x": {**PERSON_OK, "age": 256}},
        "args.x.age: 256 is out of range for u8",
        id="record-path",
    ),
    pytest.param(
        "echo-person",
        {"x": {**PERSON_OK, "address": {"street": "s", "city": 5}}},
        "args.x.address.city: expected a string, got number 5",
        id="nested-record-path",
    ),
    pytest.param(
        "echo-person",
        {"x": {**PERSON_OK, "tags": ["a", 3]}},
        "args.x.tags[1]: expected a string, got number 3",
        id="list-in-record-path",
    ),
    pytest.param(
        "echo-list",
        {"x": [1, "two"]},
        'args.x[1]: expected an integer (s32), got string "two"',
        id="list-path",
    ),
    pytest.param(
        "echo-people",
        {"x": [PERSON_OK, {**PERSON_OK, "age": -1}]},
        "args.x[1].age: -1 is out of range for u8",
        id="record-in-list-path",
    ),
    pytest.param(
        "echo-integers",
        {"x": {**dict.fromkeys(INTEGERS["properties"], 0), "a-u64": -1}},
        "args.x.a-u64: -1 is out of range for u64",
        id="record-field-u64",
    ),
    pytest.param("echo-bytes", {"x": [0, 256]}, "args.x[1]: 256 is out of range for u8", id="bytes-path"),
    pytest.param(
        "echo-tuple", {"x": [1, "a", "no"]}, 'args.x[2]: expected a boolean, got string "no"', id="tuple-path"
    ),
    pytest.param(
        "echo-variant",
        {"x": {"progress": 256}},
        "args.x.progress: 256 is out of range for u8",
        id="variant-path",
    ),
    pytest.param(
        "echo-option-option",
        {"x": {"some": "a"}},
        'args.x.some: expected an integer (s32), got string "a"',
        id="option-some-path",
    ),
    pytest.param(
        "area",
        {"s": {"rectangle": {"width": 1.0}}},
        'args.s.rectangle: missing required field "height"',
        id="interface-path",
    ),
    # missing and unknown fields
    pytest.param("echo-s8", {}, 'args: missing required field "x"', id="missing-param"),
    pytest.param("checked-div", {"a": 1}, 'args: missing required field "b"', id="missing-second-param"),
    pytest.param(
        "echo-person",
        {"x": {k: v for k, v in PERSON_OK.items() if k != "name"}},
        'args.x: missing required field "name"',
        id="missing-field",
    ),
    pytest.param(
        "echo-s8", {"x": 1, "y": 2}, 'args: unknown field "y" (expected one of: x)', id="unknown-param"
    ),
    pytest.param(
        "echo-person",
        {"x": {**PERSON_OK, "email": "e"}},
        'args.x: unknown field "email" (expected one of: name, age, address, tags)',
        id="unknown-field",
    ),
    pytest.param(
        "noop", {"x": 1}, 'args: unknown field "x" (no fields are expected)', id="unknown-field-noop"
    ),
    # wrong types
    pytest.param("echo-bool", {"x": 1}, "args.x: expected a boolean, got number 1", id="int-for-bool"),
    pytest.param(
        "echo-s32", {"x": "1"}, 'args.x: expected an integer (s32), got string "1"', id="string-for-int"
    ),
    pytest.param(
        "echo-s32", {"x": True}, "args.x: expected an integer (s32), got boolean true", id="bool-for-int"
    ),
    pytest.param("echo-s32", {"x": None}, "args.x: expected an integer (s32), got null", id="null-for-int"),
    pytest.param("echo-string", {"x": 5}, "args.x: expected a string, got number 5", id="int-for-string"),
    pytest.param(
        "echo-string", {"x": ["a"]}, "args.x: expected a string, got an array", id="array-for-string"
    ),
    pytest.param("echo-list", {"x": {}}, "args.x: expected an array, got an object", id="object-for-list"),
    pytest.param("echo-person", {"x": []}, "args.x: expected an object, got an array", id="array-for-record"),
    pytest.param(
        "echo-tuple", {"x": [1, "a"]}, "args.x: expected a tuple of 3 items, got 2", id="short-tuple"
    ),
    pytest.param(
        "echo-tuple", {"x": [1, "a", True, 4]}, "args.x: expected a tuple of 3 items, got 4", id="long-tuple"
    ),
    pytest.param("echo-f64", {"x": None}, "args.x: expected a number (f64), got null", id="null-for-float"),
    pytest.param(
        "echo-f64",
        {"x": "nan"},
        'args.x: expected a number (f64) or one of "NaN", "Infinity", "-Infinity", got string "nan"',
        id="lowercase-nan",
    ),
    pytest.param(
        "echo-option", {"x": 5}, "args.x: expected a string, got number 5", id="wrong-option-payload"
    ),
    pytest.param(
        "echo-option-option",
        {"x": 5},
        'args.x: expected null or {"some": value}, got number 5',
        id="unwrapped-option-option",
    ),
    pytest.param(
        "echo-option-option",
        {"x": {"some": 5, "other": 1}},
        'args.x: expected null or {"some": value}, got an object',
        id="option-option-extra-key",
    ),
    # integers
    pytest.param("echo-s32", {"x": 2.5}, "args.x: 2.5 is not an integer (s32)", id="fraction-for-int"),
    pytest.param("echo-u64", {"x": 0.5}, "args.x: 0.5 is not an integer (u64)", id="fraction-for-u64"),
    # char
    pytest.param(
        "echo-char", {"x": ""}, "args.x: expected exactly one character (char), got 0 characters", id="char-0"
    ),
    pytest.param(
        "echo-char",
        {"x": "ab"},
        "args.x: expected exactly one character (char), got 2 characters",
        id="char-2",
    ),
    pytest.param(
        "echo-char",
        {"x": EMOJI * 2},
        "args.x: expected exactly one character (char), got 2 characters",
        id="char-2-astral",
    ),
    pytest.param(
        "echo-char",
        {"x": "e\u0301"},
        "args.x: expected exactly one character (char), got 2 characters",
        id="char-combining",
    ),
    pytest.param(
        "echo-char",
        {"x": 97},
        "args.x: expected a one-character string (char), got number 97",
        id="char-number",
    ),
    # flags and enums
    pytest.param(
        "echo-flags", {"x": ["read", "read"]}, 'args.x[1]: flag "read" is listed twice', id="duplicate-flag"
    ),
    pytest.param(
        "echo-flags",
        {"x": ["admin"]},
        'args.x[0]: "admin" is not one of: read, write, exec',
        id="unknown-flag",
    ),
    pytest.param(
        "echo-flags",
        {"x": "read"},
        'args.x: expected an array of flag names, got string "read"',
        id="flag-string",
    ),
    pytest.param("echo-flags", {"x": [1]}, "args.x[0]: expected a flag name, got number 1", id="flag-number"),
    pytest.param(
        "echo-enum", {"x": "purple"}, 'args.x: "purple" is not one of: red, green, blue', id="unknown-enum"
    ),
    pytest.param(
        "echo-enum", {"x": "Red"}, 'args.x: "Red" is not one of: red, green, blue', id="enum-case-sensitive"
    ),
    pytest.param("echo-enum", {"x": 0}, "args.x: expected a string (enum), got number 0", id="enum-number"),
    # variants and results
    pytest.param(
        "echo-variant",
        {"x": {"started": None, "stopped": None}},
        f"args.x: expected an object with exactly one of the keys: {EVENT_KEYS}, got an object with 2 keys",
        id="variant-two-keys",
    ),
    pytest.param(
        "echo-variant",
        {"x": {}},
        f"args.x: expected an object with exactly one of the keys: {EVENT_KEYS}, got an object with 0 keys",
        id="variant-no-key",
    ),
    pytest.param(
        "echo-variant",
        {"x": {"nope": None}},
        f'args.x: unknown case "nope" (expected one of: {EVENT_KEYS})',
        id="variant-unknown-case",
    ),
    pytest.param(
        "echo-variant",
        {"x": "started"},
        f'args.x: expected an object with exactly one of the keys: {EVENT_KEYS}, got string "started"',
        id="variant-bare-name",
    ),
    pytest.param(
        "echo-variant",
        {"x": {"started": 1}},
        "args.x.started: expected null (this case carries no value), got number 1",
        id="variant-unexpected-payload",
    ),
    pytest.param(
        "echo-result",
        {"x": {"ok": 1, "err": "e"}},
        "args.x: expected an object with exactly one of the keys: ok, err, got an object with 2 keys",
        id="result-two-keys",
    ),
    pytest.param(
        "echo-result",
        {"x": {"ok": "a"}},
        'args.x.ok: expected an integer (s32), got string "a"',
        id="result-ok-type",
    ),
    pytest.param(
        "echo-result-no-ok",
        {"x": {"ok": 1}},
        "args.x.ok: expected null (this case carries no value), got number 1",
        id="result-no-ok-payload",
    ),
    # args that are not an object
    pytest.param("echo-s8", [], "args: expected an object, got an array", id="args-array"),
    pytest.param("echo-s8", 5, "args: expected an object, got number 5", id="args-number"),
    pytest.param("echo-s8", "x", 'args: expected an object, got string "x"', id="args-string"),
    pytest.param("echo-s8", None, "args: expected an object, got null", id="args-null"),
    pytest.param("noop", [], "args: expected an object, got an array", id="args-array-noop"),
    # floats
    pytest.param(
        "echo-f32",
        {"x": 1e39},
        "args.x: 1e+39 is out of range for f32",
        id="f32-range",
    ),
]


@pytest.mark.parametrize(("function", "args", "message"), REJECTIONS)
def test_rejected_by_call_and_by_schema(types: Loaded, function: str, args: Any, message: str) -> None:
    """Bad arguments give invalid_arguments with a path-precise message, and the input schema rejects them too."""
    interface = SHAPES if function == "area" else None
    out = types.call(function, args, interface)
    assert (out.status, out.error) == ("invalid_arguments", message)
    assert out.value_json is None
    assert not valid(types.info(function, interface)["input_schema"], args)


def test_every_error_message_is_one_line(types: Loaded) -> None:
    """A rejection message is a single line, even for a long string value."""
    out = types.call("echo-s8", {"x": "line one\nline two " + "z" * 100})
    assert out.status == "invalid_arguments"
    assert out.error == "args.x: expected an integer (s8), got a string"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        '{"x": 1',
        "{'x': 1}",
        '{"x": NaN}',
        '{"x": Infinity}',
        '{"x": 1} trailing',
        '{"x": "\\ud800"}',  # a lone surrogate is not a Unicode scalar value
    ],
)
def test_non_json_arguments_raise(types: Loaded, text: str) -> None:
    """Arguments that are not JSON text raise ValueError before anything runs."""
    with pytest.raises(ValueError, match=r"^arguments are not valid JSON: "):
        types.component.start(None, "echo-f64", text).finish()


def test_unknown_export_raises(types: Loaded) -> None:
    """Calling a function the component does not export raises ValueError naming it."""
    with pytest.raises(ValueError, match="the component has no export nope"):
        types.component.start(None, "nope", "{}").finish()
    with pytest.raises(ValueError, match=f"the component has no export {SHAPES}#nope"):
        types.component.start(SHAPES, "nope", "{}").finish()
    with pytest.raises(ValueError, match="the component has no export area"):
        types.component.start(None, "area", "{}").finish()


def test_schema_cannot_express_lone_surrogates(types: Loaded) -> None:
    """A lone surrogate is a valid one-character Python string for the schema, but not JSON the engine accepts."""
    assert valid(types.info("echo-char")["input_schema"], {"x": "\ud800"})
    with pytest.raises(ValueError, match="not valid JSON"):
        types.component.start(None, "echo-char", json.dumps({"x": "\ud800"})).finish()


def test_rejection_table_covers_every_int_type() -> None:
    """Both ends of every integer type are in the rejection table."""
    ids = {p.id for p in REJECTIONS}
    assert {f"{t}-{end}" for t in INT_TYPES for end in ("above", "below")} <= ids


def test_float_literal_beyond_f64_is_rejected(types: Loaded) -> None:
    """`1e400` is not silently turned into an infinity (those are spelled "Infinity")."""
    out = types.component.start(None, "echo-f64", '{"x": 1e400}').finish()
    assert (out.status, out.error) == ("invalid_arguments", "args.x: 1e+400 is out of range for f64")
