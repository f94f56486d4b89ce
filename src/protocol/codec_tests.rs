//! Codec tests: named cases against msgpack written out independently (with `rmpv` trees and
//! literal extension bytes from cty's documented encoding), JSON input, errors, and round trips
//! of generated types and values.

use std::collections::BTreeMap;

use pretty_assertions::assert_eq;
use rmpv::Value as Mp;

use super::*;
use crate::framework::schema::{Attribute, AttributeType, Block, NestedBlock, Nesting};

fn s(text: &str) -> RawValue {
    RawValue::String(text.to_owned())
}
fn int(i: i64) -> RawValue {
    RawValue::Number(Number::Int(i))
}
fn obj(attrs: &[(&str, RawValue)]) -> RawValue {
    RawValue::Object(
        attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}
fn map(entries: &[(&str, RawValue)]) -> RawValue {
    RawValue::Map(
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}
fn unknown() -> RawValue {
    RawValue::Unknown(Refinement::default())
}
fn prefixed(prefix: &str) -> RawValue {
    RawValue::Unknown(Refinement {
        not_null: Some(true),
        string_prefix: Some(prefix.to_owned()),
        ..Refinement::default()
    })
}
fn obj_ty(attrs: &[(&str, Type)]) -> Type {
    Type::Object(
        attrs
            .iter()
            .map(|(k, t)| ((*k).to_owned(), t.clone()))
            .collect(),
    )
}
fn list(t: Type) -> Type {
    Type::List(Box::new(t))
}
fn set(t: Type) -> Type {
    Type::Set(Box::new(t))
}
fn map_ty(t: Type) -> Type {
    Type::Map(Box::new(t))
}
fn mp_map(entries: Vec<(&str, Mp)>) -> Mp {
    Mp::Map(entries.into_iter().map(|(k, v)| (Mp::from(k), v)).collect())
}
fn mp_bytes(value: &Mp) -> Vec<u8> {
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, value).unwrap();
    bytes
}
fn dyn_pair(type_json: &str, value: Mp) -> Mp {
    Mp::Array(vec![Mp::Binary(type_json.as_bytes().to_vec()), value])
}

/// cty's plain unknown: fixext1, code 0, one zero byte.
fn mp_unknown() -> Mp {
    Mp::Ext(0, vec![0])
}
/// cty's refined unknown: ext 12 with a msgpack map payload (given as literal bytes).
fn mp_refined(payload: &[u8]) -> Mp {
    Mp::Ext(12, payload.to_vec())
}

/// One codec case: a type, the value, and the msgpack Terraform puts on the wire for it.
struct Case {
    name: &'static str,
    ty: Type,
    value: RawValue,
    wire: Mp,
}

fn cases() -> Vec<Case> {
    let a_string = obj_ty(&[("a", Type::String)]);
    vec![
        Case {
            name: "null-top",
            ty: Type::String,
            value: RawValue::Null,
            wire: Mp::Nil,
        },
        Case {
            name: "unknown-top",
            ty: a_string.clone(),
            value: unknown(),
            wire: mp_unknown(),
        },
        Case {
            name: "refined-string-top",
            ty: Type::String,
            value: prefixed("ab"),
            // {1: false (not null), 2: "ab"}
            wire: mp_refined(&[0x82, 0x01, 0xc2, 0x02, 0xa2, b'a', b'b']),
        },
        Case {
            name: "refined-number-bounds",
            ty: Type::Number,
            value: RawValue::Unknown(Refinement {
                number_lower: Some((Number::Int(0), true)),
                number_upper: Some((Number::Float(1.5), false)),
                ..Refinement::default()
            }),
            // {3: [0, true], 4: [1.5, false]}
            wire: mp_refined(&[
                0x82, 0x03, 0x92, 0x00, 0xc3, 0x04, 0x92, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xc2,
            ]),
        },
        Case {
            name: "refined-list-length-top",
            ty: list(Type::String),
            value: RawValue::Unknown(Refinement {
                not_null: Some(true),
                length_lower: Some(1),
                length_upper: Some(3),
                ..Refinement::default()
            }),
            // {1: false, 5: 1, 6: 3}
            wire: mp_refined(&[0x83, 0x01, 0xc2, 0x05, 0x01, 0x06, 0x03]),
        },
        Case {
            name: "null-object-attribute",
            ty: obj_ty(&[("a", Type::String), ("b", Type::Bool)]),
            value: obj(&[("a", RawValue::Null), ("b", RawValue::Bool(true))]),
            wire: mp_map(vec![("a", Mp::Nil), ("b", Mp::Boolean(true))]),
        },
        Case {
            name: "unknown-object-attribute",
            ty: a_string.clone(),
            value: obj(&[("a", unknown())]),
            wire: mp_map(vec![("a", mp_unknown())]),
        },
        Case {
            name: "refined-object-attribute",
            ty: a_string.clone(),
            value: obj(&[("a", prefixed("x"))]),
            wire: mp_map(vec![(
                "a",
                mp_refined(&[0x82, 0x01, 0xc2, 0x02, 0xa1, b'x']),
            )]),
        },
        Case {
            name: "list-elements-null-unknown-refined",
            ty: list(Type::String),
            value: RawValue::List(vec![s("k"), RawValue::Null, unknown(), prefixed("x")]),
            wire: Mp::Array(vec![
                Mp::from("k"),
                Mp::Nil,
                mp_unknown(),
                mp_refined(&[0x82, 0x01, 0xc2, 0x02, 0xa1, b'x']),
            ]),
        },
        Case {
            name: "set-elements-unknown-refined",
            ty: set(Type::String),
            value: RawValue::Set(vec![unknown(), prefixed("y")]),
            wire: Mp::Array(vec![
                mp_unknown(),
                mp_refined(&[0x82, 0x01, 0xc2, 0x02, 0xa1, b'y']),
            ]),
        },
        Case {
            name: "map-values-null-unknown-refined",
            ty: map_ty(Type::String),
            value: map(&[
                ("n", RawValue::Null),
                ("u", unknown()),
                ("r", prefixed("z")),
            ]),
            wire: Mp::Map(vec![
                (Mp::from("n"), Mp::Nil),
                (
                    Mp::from("r"),
                    mp_refined(&[0x82, 0x01, 0xc2, 0x02, 0xa1, b'z']),
                ),
                (Mp::from("u"), mp_unknown()),
            ]),
        },
        Case {
            name: "nested-attribute-list-with-unknowns",
            ty: list(a_string.clone()),
            value: RawValue::List(vec![
                obj(&[("a", unknown())]),
                obj(&[("a", RawValue::Null)]),
            ]),
            wire: Mp::Array(vec![
                mp_map(vec![("a", mp_unknown())]),
                mp_map(vec![("a", Mp::Nil)]),
            ]),
        },
        Case {
            name: "nested-attribute-set-wholly-unknown-refined",
            ty: obj_ty(&[("items", set(a_string.clone()))]),
            value: obj(&[(
                "items",
                RawValue::Unknown(Refinement {
                    not_null: Some(true),
                    length_lower: Some(1),
                    ..Refinement::default()
                }),
            )]),
            // {1: false, 5: 1}
            wire: mp_map(vec![("items", mp_refined(&[0x82, 0x01, 0xc2, 0x05, 0x01]))]),
        },
        Case {
            name: "nested-attribute-map-values-null-and-unknown",
            ty: map_ty(a_string.clone()),
            value: map(&[("k1", RawValue::Null), ("k2", obj(&[("a", unknown())]))]),
            wire: Mp::Map(vec![
                (Mp::from("k1"), Mp::Nil),
                (Mp::from("k2"), mp_map(vec![("a", mp_unknown())])),
            ]),
        },
        Case {
            name: "dynamic-null-is-bare-nil",
            ty: Type::Dynamic,
            value: RawValue::Null,
            wire: Mp::Nil,
        },
        Case {
            name: "dynamic-unknown-is-bare-ext",
            ty: Type::Dynamic,
            value: unknown(),
            wire: mp_unknown(),
        },
        Case {
            name: "dynamic-string",
            ty: Type::Dynamic,
            value: s("hi"),
            wire: dyn_pair("\"string\"", Mp::from("hi")),
        },
        Case {
            name: "dynamic-refined-string",
            ty: Type::Dynamic,
            value: prefixed("p"),
            wire: dyn_pair(
                "\"string\"",
                mp_refined(&[0x82, 0x01, 0xc2, 0x02, 0xa1, b'p']),
            ),
        },
        Case {
            name: "dynamic-object-with-unknown-and-refined",
            ty: obj_ty(&[("d", Type::Dynamic)]),
            value: obj(&[(
                "d",
                obj(&[("a", unknown()), ("b", prefixed("q")), ("c", int(1))]),
            )]),
            wire: mp_map(vec![(
                "d",
                dyn_pair(
                    r#"["object",{"a":"dynamic","b":"string","c":"number"}]"#,
                    mp_map(vec![
                        ("a", mp_unknown()),
                        ("b", mp_refined(&[0x82, 0x01, 0xc2, 0x02, 0xa1, b'q'])),
                        ("c", Mp::from(1)),
                    ]),
                ),
            )]),
        },
        Case {
            name: "dynamic-tuple-of-differently-shaped-objects",
            ty: Type::Dynamic,
            value: RawValue::Tuple(vec![obj(&[("a", int(1))]), obj(&[("b", s("x"))])]),
            wire: dyn_pair(
                r#"["tuple",[["object",{"a":"number"}],["object",{"b":"string"}]]]"#,
                Mp::Array(vec![
                    mp_map(vec![("a", Mp::from(1))]),
                    mp_map(vec![("b", Mp::from("x"))]),
                ]),
            ),
        },
        Case {
            name: "dynamic-list-of-objects-with-nulls-unifies",
            ty: Type::Dynamic,
            value: RawValue::List(vec![obj(&[("a", RawValue::Null)]), obj(&[("a", s("x"))])]),
            wire: dyn_pair(
                r#"["list",["object",{"a":"string"}]]"#,
                Mp::Array(vec![
                    mp_map(vec![("a", Mp::Nil)]),
                    mp_map(vec![("a", Mp::from("x"))]),
                ]),
            ),
        },
        Case {
            name: "dynamic-list-of-incompatible-elements-wraps-each",
            ty: Type::Dynamic,
            value: RawValue::List(vec![obj(&[("a", int(1))]), obj(&[("b", int(2))])]),
            wire: dyn_pair(
                r#"["list","dynamic"]"#,
                Mp::Array(vec![
                    dyn_pair(
                        r#"["object",{"a":"number"}]"#,
                        mp_map(vec![("a", Mp::from(1))]),
                    ),
                    dyn_pair(
                        r#"["object",{"b":"number"}]"#,
                        mp_map(vec![("b", Mp::from(2))]),
                    ),
                ]),
            ),
        },
        Case {
            name: "dynamic-nested-in-dynamic-map",
            ty: map_ty(Type::Dynamic),
            value: map(&[("m", map(&[("k", RawValue::List(vec![int(1), int(2)]))]))]),
            wire: Mp::Map(vec![(
                Mp::from("m"),
                dyn_pair(
                    r#"["map",["list","number"]]"#,
                    Mp::Map(vec![(
                        Mp::from("k"),
                        Mp::Array(vec![Mp::from(1), Mp::from(2)]),
                    )]),
                ),
            )]),
        },
        Case {
            name: "numbers-int-float-decimal",
            ty: list(Type::Number),
            value: RawValue::List(vec![
                int(i64::MIN),
                RawValue::Number(Number::Float(0.5)),
                RawValue::Number(Number::Float(1e300)),
                RawValue::Number(Number::Decimal("123456789012345678901234567890".into())),
                RawValue::Number(Number::Decimal("0.1000000000000000000001".into())),
            ]),
            wire: Mp::Array(vec![
                Mp::from(i64::MIN),
                Mp::F64(0.5),
                Mp::F64(1e300),
                Mp::from("123456789012345678901234567890"),
                Mp::from("0.1000000000000000000001"),
            ]),
        },
    ]
}

#[test]
fn named_cases_encode_to_the_wire_form_and_decode_back() {
    for case in cases() {
        let wire = mp_bytes(&case.wire);
        let encoded = encode_msgpack(&case.value, &case.ty)
            .unwrap_or_else(|e| panic!("{}: encode: {e}", case.name));
        assert_eq!(encoded, wire, "{}: encoded bytes", case.name);
        let decoded = decode_msgpack(&wire, &case.ty)
            .unwrap_or_else(|e| panic!("{}: decode: {e}", case.name));
        assert_eq!(decoded, case.value, "{}: decoded value", case.name);
    }
}

#[test]
fn plain_unknown_is_fixext1_code_zero() {
    assert_eq!(
        encode_msgpack(&unknown(), &Type::String).unwrap(),
        vec![0xd4, 0x00, 0x00]
    );
}

#[test]
fn decoding_accepts_what_terraform_may_send() {
    let cases: Vec<(&str, Type, Mp, RawValue)> = vec![
        (
            "any-extension-code-is-unknown",
            Type::String,
            Mp::Ext(5, vec![]),
            unknown(),
        ),
        (
            "unknown-refinement-keys-ignored",
            Type::String,
            mp_refined(&[0x82, 0x01, 0xc2, 0x3f, 0xc3]),
            RawValue::Unknown(Refinement {
                not_null: Some(true),
                ..Refinement::default()
            }),
        ),
        (
            "refinements-on-dynamic-ignored-as-in-cty",
            Type::Dynamic,
            mp_refined(&[0x81, 0x01, 0xc2]),
            unknown(),
        ),
        ("integral-float-is-int", Type::Number, Mp::F64(3.0), int(3)),
        (
            "uint64-beyond-i64-is-decimal",
            Type::Number,
            Mp::from(u64::MAX),
            RawValue::Number(Number::Decimal("18446744073709551615".into())),
        ),
        (
            "number-as-plain-string",
            Type::Number,
            Mp::from("42"),
            int(42),
        ),
        (
            "dynamic-type-json-as-str",
            Type::Dynamic,
            Mp::Array(vec![Mp::from("\"bool\""), Mp::Boolean(true)]),
            RawValue::Bool(true),
        ),
        (
            "missing-object-attribute-is-null",
            obj_ty(&[("a", Type::String), ("b", Type::String)]),
            mp_map(vec![("a", Mp::from("x"))]),
            obj(&[("a", s("x")), ("b", RawValue::Null)]),
        ),
    ];
    for (name, ty, wire, expected) in cases {
        let decoded =
            decode_msgpack(&mp_bytes(&wire), &ty).unwrap_or_else(|e| panic!("{name}: decode: {e}"));
        assert_eq!(decoded, expected, "{name}");
    }
}

#[test]
fn json_input_is_decoded() {
    let ty = obj_ty(&[
        ("n", Type::Number),
        ("big", Type::Number),
        ("s", set(Type::String)),
        ("d", Type::Dynamic),
        ("t", Type::Tuple(vec![Type::Bool, Type::String])),
        ("z", Type::String),
    ]);
    let json = br#"{"n": 1.5, "big": "123456789012345678901234567890", "s": ["a"],
        "d": {"type": ["object", {"x": "number"}], "value": {"x": 7}},
        "t": [true, "v"], "z": null}"#;
    assert_eq!(
        decode_json(json, &ty).unwrap(),
        obj(&[
            ("n", RawValue::Number(Number::Float(1.5))),
            (
                "big",
                RawValue::Number(Number::Decimal("123456789012345678901234567890".into()))
            ),
            ("s", RawValue::Set(vec![s("a")])),
            ("d", obj(&[("x", int(7))])),
            ("t", RawValue::Tuple(vec![RawValue::Bool(true), s("v")])),
            ("z", RawValue::Null),
        ])
    );
}

#[test]
fn malformed_input_is_an_error_naming_the_place() {
    let ty = obj_ty(&[("a", list(Type::Number))]);
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "truncated",
            vec![0x81, 0xa1],
            "reading msgpack: ".to_owned(),
        ),
        (
            "wrong-element-kind",
            mp_bytes(&mp_map(vec![("a", Mp::Array(vec![Mp::Boolean(true)]))])),
            "at a[0]: expected number, found bool".to_owned(),
        ),
        (
            "unexpected-attribute",
            mp_bytes(&mp_map(vec![("zz", Mp::Nil)])),
            "at (root): unexpected attribute \"zz\"".to_owned(),
        ),
        (
            "not-a-number",
            mp_bytes(&mp_map(vec![("a", Mp::Array(vec![Mp::from("1x")]))])),
            "at a[0]: invalid number \"1x\"".to_owned(),
        ),
        (
            "trailing-bytes",
            {
                let mut b = mp_bytes(&mp_map(vec![("a", Mp::Nil)]));
                b.push(0xc0);
                b
            },
            "1 trailing bytes after the msgpack value".to_owned(),
        ),
    ];
    for (name, bytes, message) in cases {
        let error = decode_msgpack(&bytes, &ty).expect_err(name).to_string();
        assert!(
            error.starts_with(&message),
            "{name}: {error:?} does not start with {message:?}"
        );
    }
}

#[test]
fn type_json_round_trips_and_tolerates_optional_attrs() {
    let ty = obj_ty(&[
        ("a", list(Type::String)),
        ("b", Type::Tuple(vec![Type::Number, Type::Dynamic])),
        ("c", map_ty(set(Type::Bool))),
    ]);
    let json = type_to_json(&ty);
    assert_eq!(
        json.to_string(),
        r#"["object",{"a":["list","string"],"b":["tuple",["number","dynamic"]],"c":["map",["set","bool"]]}]"#
    );
    assert_eq!(type_from_json(&json).unwrap(), ty);
    assert_eq!(
        type_from_json_bytes(br#"["object",{"x":"string"},["x"]]"#).unwrap(),
        obj_ty(&[("x", Type::String)])
    );
    assert!(type_from_json_bytes(br#"["lisst","string"]"#).is_err());
}

fn attribute(name: &str, kind: AttributeType) -> Attribute {
    Attribute {
        name: name.to_owned(),
        kind,
        description: String::new(),
        required: false,
        optional: true,
        computed: false,
        sensitive: false,
        write_only: false,
        deprecated: None,
        default: None,
    }
}

#[test]
fn block_type_covers_nested_attributes_and_blocks() {
    let inner = vec![attribute("x", AttributeType::Plain(Type::String))];
    let nested = |nesting| AttributeType::Nested {
        nesting,
        attributes: inner.clone(),
    };
    let block = Block {
        attributes: vec![
            attribute("plain", AttributeType::Plain(Type::Number)),
            attribute("single", nested(Nesting::Single)),
            attribute("list", nested(Nesting::List)),
            attribute("set", nested(Nesting::Set)),
            attribute("map", nested(Nesting::Map)),
        ],
        blocks: vec![NestedBlock {
            type_name: "timeouts".into(),
            nesting: Nesting::Single,
            block: Block {
                attributes: vec![attribute("create", AttributeType::Plain(Type::String))],
                ..Block::default()
            },
            min_items: 0,
            max_items: 0,
        }],
        ..Block::default()
    };
    let x = obj_ty(&[("x", Type::String)]);
    assert_eq!(
        block_type(&block),
        obj_ty(&[
            ("plain", Type::Number),
            ("single", x.clone()),
            ("list", list(x.clone())),
            ("set", set(x.clone())),
            ("map", map_ty(x)),
            ("timeouts", obj_ty(&[("create", Type::String)])),
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// Generated round trips

/// A small deterministic pseudo-random generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn name(&mut self) -> String {
        let len = 1 + self.below(4);
        (0..len)
            .map(|_| char::from(b'a' + u8::try_from(self.below(6)).unwrap()))
            .collect()
    }
}

fn gen_type(rng: &mut Rng, depth: u32) -> Type {
    let leaf = depth == 0 || rng.chance(40);
    if leaf {
        return match rng.below(4) {
            0 => Type::Bool,
            1 => Type::Number,
            2 => Type::String,
            _ => Type::Dynamic,
        };
    }
    match rng.below(5) {
        0 => list(gen_type(rng, depth - 1)),
        1 => set(gen_type(rng, depth - 1)),
        2 => map_ty(gen_type(rng, depth - 1)),
        3 => Type::Tuple(
            (0..rng.below(3))
                .map(|_| gen_type(rng, depth - 1))
                .collect(),
        ),
        _ => Type::Object(
            (0..rng.below(4))
                .map(|_| (rng.name(), gen_type(rng, depth - 1)))
                .collect(),
        ),
    }
}

fn gen_number(rng: &mut Rng) -> Number {
    match rng.below(5) {
        0 => Number::Int(i64::try_from(rng.below(1000)).unwrap() - 500),
        1 => Number::Int(rng.next() as i64),
        2 => Number::Float(f64::from(u32::try_from(rng.below(100_000)).unwrap()) + 0.25),
        3 => Number::Float(1e300 * f64::from(u32::try_from(rng.below(9) + 1).unwrap())),
        _ => {
            let digits: String = (0..30)
                .map(|_| char::from(b'1' + u8::try_from(rng.below(9)).unwrap()))
                .collect();
            if rng.chance(50) {
                Number::Decimal(digits)
            } else {
                Number::Decimal(format!("0.{digits}"))
            }
        }
    }
}

/// Refinements that apply to `ty`. Inside a `dynamic` value a refinement must pin the type
/// (cty drops refinements of a dynamic-typed unknown), so `not_null` alone is not used there.
fn gen_refinement(rng: &mut Rng, ty: &Type, in_dynamic: bool) -> Refinement {
    let mut refinement = Refinement::default();
    match ty {
        Type::String if rng.chance(60) => refinement.string_prefix = Some(rng.name()),
        Type::Number if rng.chance(60) => {
            refinement.number_lower = Some((gen_number(rng), rng.chance(50)));
            if rng.chance(50) {
                refinement.number_upper = Some((gen_number(rng), rng.chance(50)));
            }
        }
        Type::List(_) | Type::Set(_) | Type::Map(_) if rng.chance(60) => {
            refinement.length_lower = Some(1 + rng.below(3));
            if rng.chance(50) {
                refinement.length_upper = Some(4 + rng.below(3));
            }
        }
        _ => {}
    }
    let pinned = refinement != Refinement::default();
    if *ty != Type::Dynamic && (pinned || !in_dynamic) && rng.chance(50) {
        refinement.not_null = Some(true);
    }
    refinement
}

fn gen_value(rng: &mut Rng, ty: &Type, depth: u32, in_dynamic: bool) -> RawValue {
    if rng.chance(8) {
        return RawValue::Null;
    }
    if rng.chance(8) {
        return RawValue::Unknown(gen_refinement(rng, ty, in_dynamic));
    }
    let count = |rng: &mut Rng| rng.below(4);
    match ty {
        Type::Bool => RawValue::Bool(rng.chance(50)),
        Type::Number => RawValue::Number(gen_number(rng)),
        Type::String => RawValue::String(rng.name()),
        Type::Dynamic => {
            let concrete = loop {
                let candidate = gen_type(rng, depth.min(2));
                if candidate != Type::Dynamic {
                    break candidate;
                }
            };
            gen_value(rng, &concrete, depth.saturating_sub(1), true)
        }
        Type::List(element) => RawValue::List(
            (0..count(rng))
                .map(|_| gen_value(rng, element, depth.saturating_sub(1), in_dynamic))
                .collect(),
        ),
        Type::Set(element) => RawValue::Set(
            (0..count(rng))
                .map(|_| gen_value(rng, element, depth.saturating_sub(1), in_dynamic))
                .collect(),
        ),
        Type::Map(element) => RawValue::Map(
            (0..count(rng))
                .map(|_| {
                    (
                        rng.name(),
                        gen_value(rng, element, depth.saturating_sub(1), in_dynamic),
                    )
                })
                .collect(),
        ),
        Type::Tuple(elements) => RawValue::Tuple(
            elements
                .iter()
                .map(|t| gen_value(rng, t, depth.saturating_sub(1), in_dynamic))
                .collect(),
        ),
        Type::Object(attrs) => RawValue::Object(
            attrs
                .iter()
                .map(|(name, t)| {
                    (
                        name.clone(),
                        gen_value(rng, t, depth.saturating_sub(1), in_dynamic),
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

#[test]
fn generated_values_round_trip() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for i in 0..4000 {
        let ty = gen_type(&mut rng, 4);
        let value = gen_value(&mut rng, &ty, 4, false);
        let bytes = encode_msgpack(&value, &ty)
            .unwrap_or_else(|e| panic!("case {i}: encode {value:?} as {ty:?}: {e}"));
        let decoded = decode_msgpack(&bytes, &ty)
            .unwrap_or_else(|e| panic!("case {i}: decode {value:?} as {ty:?}: {e}"));
        assert_eq!(decoded, value, "case {i}: type {ty:?}");
        assert_eq!(type_from_json(&type_to_json(&ty)).unwrap(), ty, "case {i}");
    }
}
