/**
 * The Standard Schema interface (https://standardschema.dev, version 1), which zod,
 * valibot, ArkType and others implement: hotline validates channel data and rpc params with
 * whichever of them the application uses, without depending on any.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The spec's properties, under a key no library uses for anything else. */
  readonly '~standard': {
    /** The spec's version: 1. */
    readonly version: 1;
    /** The implementing library, such as `'zod'` or `'valibot'`. */
    readonly vendor: string;
    /** Checks `value`: the (possibly transformed) value, or the issues; may be async. */
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
    /** Type carriers for inference only; never read at run time. */
    readonly types?:
      | {
          /** What the schema accepts. */
          readonly input: Input;
          /** What it produces. */
          readonly output: Output;
        }
      | undefined;
  };
}

export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: readonly StandardIssue[] };

export interface StandardIssue {
  readonly message: string;
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

/** The type a schema produces. */
export type InferOutput<S> = S extends StandardSchemaV1<unknown, infer O> ? O : never;

/** Validates `value`; returns the (possibly transformed) value, or a message naming each issue's path. */
export async function validateWith(
  schema: StandardSchemaV1,
  value: unknown,
): Promise<{ ok: true; value: unknown } | { ok: false; message: string }> {
  const result = await schema['~standard'].validate(value);
  if (result.issues === undefined) return { ok: true, value: result.value };
  const parts = result.issues.slice(0, 5).map((issue) => {
    const path = (issue.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.');
    return path === '' ? issue.message : `${path}: ${issue.message}`;
  });
  if (result.issues.length > 5) parts.push(`and ${result.issues.length - 5} more`);
  return { ok: false, message: parts.join('; ') };
}
