// A checker for the few JSON Schema keywords test/fixtures/*.schema.json use (type, enum,
// required, properties, additionalProperties, items, minItems, pattern): for a resource
// kubernetes-models has no type for (the Prometheus Operator's ServiceMonitor). Returns every
// problem with its path, like the API server's validation errors.
type Schema = {
  type?: "object" | "array" | "string" | "boolean" | "number" | "integer";
  enum?: unknown[];
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  minItems?: number;
  pattern?: string;
};

const typeOf = (v: unknown): string => (Array.isArray(v) ? "array" : v === null ? "null" : Number.isInteger(v) ? "integer" : typeof v);

export function checkSchema(schema: Schema, value: unknown, path = ""): string[] {
  const at = path || "/";
  if (schema.enum && !schema.enum.includes(value)) return [`${at}: must be one of ${JSON.stringify(schema.enum)}, not ${JSON.stringify(value)}`];
  if (schema.type) {
    const t = typeOf(value);
    if (t !== schema.type && !(schema.type === "number" && t === "integer")) return [`${at}: must be ${schema.type}, not ${t}`];
  }
  const out: string[] = [];
  if (typeof value === "string" && schema.pattern && !new RegExp(schema.pattern).test(value)) out.push(`${at}: ${JSON.stringify(value)} must match ${schema.pattern}`);
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) out.push(`${at}: must have at least ${schema.minItems} item(s)`);
    if (schema.items) value.forEach((v, i) => out.push(...checkSchema(schema.items!, v, `${path}/${i}`)));
  }
  if (typeOf(value) === "object") {
    const o = value as Record<string, unknown>;
    for (const k of schema.required ?? []) if (!(k in o)) out.push(`${at}: must have ${k}`);
    for (const [k, v] of Object.entries(o)) {
      const sub = schema.properties?.[k];
      if (sub) out.push(...checkSchema(sub, v, `${path}/${k}`));
      else if (schema.additionalProperties === false) out.push(`${path}/${k}: unknown field`);
      else if (typeof schema.additionalProperties === "object") out.push(...checkSchema(schema.additionalProperties, v, `${path}/${k}`));
    }
  }
  return out;
}
