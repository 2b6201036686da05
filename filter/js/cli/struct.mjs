// A `google.protobuf.Struct` configuration (`configuration: {"@type": …Struct, value: {…}}` in
// an Envoy config), serialized as Envoy hands it to the filter, so that the core validates it
// exactly as the filter does (`Config::parse` reads Struct bytes; `adtap_core::pb_struct`).
//
// Envoy reads its bootstrap (YAML or JSON) through yaml-cpp into the Struct: a plain scalar that
// is a boolean (yaml-cpp's true/false, yes/no, on/off, y/n) or an integer within i32 becomes a
// `bool_value` or `number_value`, `~`/`null`/empty a `null_value`, every other scalar, floats and
// larger integers included, a `string_value` of its text; quoted scalars are strings (see the
// core's `pb_struct::number_from_text`, which turns such strings back into numbers where the
// schema has one). This module does the same from the `yaml` package's nodes (or, for a JSON
// file, from its values), then writes the Struct's protobuf wire format:
//
//   Struct    1 fields (map entry {1 key, 2 value})     ListValue 1 values
//   Value     1 null_value  2 number_value (double)  3 string_value  4 bool_value
//             5 struct_value  6 list_value
import { isAlias, isMap, isScalar, isSeq } from 'yaml';

const BOOLS = new Map(
  ['y', 'yes', 'true', 'on'].flatMap((w) => [[w, true], [w.toUpperCase(), true], [w[0].toUpperCase() + w.slice(1), true]])
    .concat(['n', 'no', 'false', 'off'].flatMap((w) => [[w, false], [w.toUpperCase(), false], [w[0].toUpperCase() + w.slice(1), false]])),
);
const NULLS = new Set(['~', 'null', 'Null', 'NULL', '']);
const I32 = /^[-+]?[0-9]+$/;

/** What a plain scalar's text becomes in Envoy's Struct: `{ null }`, `{ bool }`, `{ number }` or `{ string }`. */
function plain(text) {
  if (NULLS.has(text)) return { null: true };
  if (BOOLS.has(text)) return { bool: BOOLS.get(text) };
  if (I32.test(text)) {
    const n = Number(text);
    if (n >= -(2 ** 31) && n < 2 ** 31) return { number: n };
  }
  return { string: text };
}

/** The Struct kind of one JSON value (a JSON file: no source text, numbers as JSON has them). */
function fromJson(v) {
  if (v === null) return { null: true };
  if (typeof v === 'boolean') return { bool: v };
  if (typeof v === 'number') return Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31 ? { number: v } : { string: String(v) };
  if (typeof v === 'string') return { string: v };
  if (Array.isArray(v)) return { list: v.map(fromJson) };
  return { struct: Object.entries(v).map(([k, x]) => [k, fromJson(x)]) };
}

/** The Struct kind of one YAML node of `doc`. */
function fromYaml(node, doc, depth = 0) {
  if (depth > 64) throw new Error('the Struct nests too deep');
  if (isAlias(node)) return fromYaml(node.resolve(doc), doc, depth + 1);
  if (isScalar(node)) {
    if (node.type === 'PLAIN') return plain(String(node.source ?? node.value ?? ''));
    return { string: String(node.value) };
  }
  if (isSeq(node)) return { list: node.items.map((n) => fromYaml(n, doc, depth + 1)) };
  if (isMap(node)) {
    return {
      struct: node.items.map((pair) => {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        return [key, pair.value === null ? { null: true } : fromYaml(pair.value, doc, depth + 1)];
      }),
    };
  }
  return { null: true };
}

// ---- protobuf wire format ----------------------------------------------------------------

function varint(n) {
  const out = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** A length-delimited field (`tag` already includes wire type 2). */
const field = (tag, bytes) => Buffer.concat([Buffer.from([tag]), varint(bytes.length), bytes]);

function valueBytes(k) {
  if (k.null) return Buffer.from([0x08, 0x00]);
  if (k.bool !== undefined) return Buffer.from([0x20, k.bool ? 1 : 0]);
  if (k.number !== undefined) {
    const b = Buffer.alloc(9);
    b[0] = 0x11;
    b.writeDoubleLE(k.number, 1);
    return b;
  }
  if (k.string !== undefined) return field(0x1a, Buffer.from(k.string, 'utf8'));
  if (k.list) return field(0x32, Buffer.concat(k.list.map((x) => field(0x0a, valueBytes(x)))));
  return field(0x2a, structBytes(k.struct));
}

function structBytes(entries) {
  return Buffer.concat(entries.map(([key, v]) =>
    field(0x0a, Buffer.concat([field(0x0a, Buffer.from(key, 'utf8')), field(0x12, valueBytes(v))]))));
}

/**
 * The serialized Struct Envoy would hand the filter for `value`: a YAML node of `doc` when the
 * file was YAML, else the JSON value.
 */
export function envoyStruct(value, doc) {
  const kind = doc ? fromYaml(value, doc) : fromJson(value);
  if (!kind.struct) throw new Error('not a mapping');
  return new Uint8Array(structBytes(kind.struct));
}
