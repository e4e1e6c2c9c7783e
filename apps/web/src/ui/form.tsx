import { useEffect, useId, useState, type FormEvent, type ReactNode } from 'react';
import { ApiError, get, messageOf, type FieldError } from '../api/client.ts';

export type FieldKind = 'text' | 'password' | 'number' | 'checkbox' | 'select' | 'multi' | 'json' | 'textarea';
export interface Option {
  value: string;
  label: string;
}
export interface FieldSpec {
  key: string;
  label: string;
  kind: FieldKind;
  help?: string;
  options?: Option[];
  /** Options from a list endpoint answering { items: [{ id, name }] }. */
  optionsFrom?: string;
  /** An empty value is sent as null (else it is left out). */
  nullable?: boolean;
  /** Only when creating (e.g. kind, password). */
  createOnly?: boolean;
  /** Write-only secrets: the form never shows a stored value, and sends one only when typed. */
  writeOnly?: boolean;
  /** The value of a new item's form. */
  defaultValue?: unknown;
  /** A multi-choice with nothing chosen is left out of the body. */
  omitEmpty?: boolean;
}

export type Values = Record<string, unknown>;

/** The errors for one field: API paths equal to the key or below it (`pools.0.poolId` → `pools`). */
export function errorsFor(fields: FieldError[], key: string): string[] {
  return fields.filter((f) => f.path === key || f.path.startsWith(`${key}.`) || f.path.startsWith(`${key}[`)).map((f) => (f.path === key ? f.message : `${f.path.slice(key.length + 1)}: ${f.message}`));
}

/** Form values → request body, by each field's kind. Throws ApiError-shaped problems for bad JSON. */
export function bodyOf(specs: FieldSpec[], values: Values, mode: 'create' | 'edit'): Values {
  const body: Values = {};
  const problems: FieldError[] = [];
  for (const f of specs) {
    if (f.createOnly && mode === 'edit') continue;
    const v = values[f.key];
    switch (f.kind) {
      case 'checkbox':
        body[f.key] = Boolean(v);
        break;
      case 'number':
        if (v === '' || v === undefined || v === null) {
          if (f.nullable) body[f.key] = null;
        } else body[f.key] = Number(v);
        break;
      case 'multi':
        if (!f.omitEmpty || (Array.isArray(v) && v.length)) body[f.key] = Array.isArray(v) ? v : [];
        break;
      case 'json':
        if (typeof v === 'string' && v.trim() !== '') {
          try {
            body[f.key] = JSON.parse(v);
          } catch (err) {
            problems.push({ path: f.key, message: `is not valid JSON (${messageOf(err)})` });
          }
        } else if (f.nullable) body[f.key] = null;
        break;
      default:
        if (typeof v === 'string' && v !== '') body[f.key] = v;
        else if (f.nullable && !f.writeOnly) body[f.key] = null;
    }
  }
  if (problems.length) throw new ApiError(400, 'invalid_input', 'some fields need attention', problems);
  return body;
}

/** An item from the API → form values. */
export function valuesOf(specs: FieldSpec[], item: Values | null): Values {
  const out: Values = {};
  for (const f of specs) {
    const v = item ? item[f.key] : f.defaultValue;
    if (f.writeOnly) out[f.key] = '';
    else if (f.kind === 'json') out[f.key] = v === undefined || v === null ? '' : JSON.stringify(v, null, 2);
    else if (f.kind === 'checkbox') out[f.key] = Boolean(v);
    else if (f.kind === 'multi') out[f.key] = Array.isArray(v) ? v : [];
    else out[f.key] = v === undefined || v === null ? '' : String(v);
  }
  return out;
}

function useOptions(spec: FieldSpec): Option[] {
  const [loaded, setLoaded] = useState<Option[] | null>(null);
  useEffect(() => {
    if (!spec.optionsFrom) return;
    let live = true;
    get<{ items: { id: string; name?: string; username?: string }[] }>(spec.optionsFrom)
      .then((r) => live && setLoaded(r.items.map((i) => ({ value: i.id, label: i.name ?? i.username ?? i.id }))))
      .catch(() => live && setLoaded([]));
    return () => {
      live = false;
    };
  }, [spec.optionsFrom]);
  return spec.options ?? loaded ?? [];
}

export function Field(props: { spec: FieldSpec; value: unknown; errors: string[]; onChange: (v: unknown) => void; idPrefix: string }): ReactNode {
  const { spec, value, errors, onChange } = props;
  const id = `${props.idPrefix}-${spec.key}`;
  const errId = `${id}-error`;
  const helpId = `${id}-help`;
  const describedBy = [spec.help ? helpId : null, errors.length ? errId : null].filter(Boolean).join(' ') || undefined;
  const common = { id, 'aria-invalid': errors.length ? true : undefined, 'aria-describedby': describedBy } as const;
  const options = useOptions(spec);
  let control: ReactNode;
  switch (spec.kind) {
    case 'checkbox':
      control = <input type="checkbox" {...common} checked={Boolean(value)} onChange={(e) => onChange(e.target.checked)} />;
      break;
    case 'select':
      control = (
        <select {...common} value={String(value ?? '')} onChange={(e) => onChange(e.target.value)}>
          <option value="">{spec.nullable ? '(none)' : '— choose —'}</option>
          {options.map((o) => (
            <option key={o.value} value={o.value}>
              {o.label}
            </option>
          ))}
        </select>
      );
      break;
    case 'multi': {
      const chosen = Array.isArray(value) ? (value as string[]) : [];
      control = (
        <fieldset {...common} className="multi">
          <legend className="sr-only">{spec.label}</legend>
          {options.length === 0 && <span className="muted">none yet</span>}
          {options.map((o) => (
            <label key={o.value} className="check">
              <input type="checkbox" checked={chosen.includes(o.value)} onChange={(e) => onChange(e.target.checked ? [...chosen, o.value] : chosen.filter((c) => c !== o.value))} />
              {o.label}
            </label>
          ))}
        </fieldset>
      );
      break;
    }
    case 'json':
    case 'textarea':
      control = <textarea {...common} rows={spec.kind === 'json' ? 5 : 3} spellCheck={false} value={String(value ?? '')} onChange={(e) => onChange(e.target.value)} />;
      break;
    default:
      control = (
        <input
          {...common}
          type={spec.kind === 'password' ? 'password' : spec.kind === 'number' ? 'number' : 'text'}
          autoComplete={spec.kind === 'password' ? 'new-password' : 'off'}
          value={String(value ?? '')}
          onChange={(e) => onChange(e.target.value)}
        />
      );
  }
  return (
    <div className={`field field-${spec.kind}${errors.length ? ' has-error' : ''}`}>
      {spec.kind === 'multi' ? <span className="label" id={`${id}-label`}>{spec.label}</span> : <label htmlFor={id}>{spec.label}</label>}
      {control}
      {spec.help && (
        <small id={helpId} className="help">
          {spec.help}
        </small>
      )}
      {errors.length > 0 && (
        <p id={errId} className="field-error" role="alert">
          {errors.join('; ')}
        </p>
      )}
    </div>
  );
}

/** A form of fields; `onSubmit` gets the body and maps an ApiError's field paths to the fields. */
export function ResourceForm(props: { title: string; specs: FieldSpec[]; initial: Values; mode: 'create' | 'edit'; submitLabel: string; onSubmit: (body: Values) => Promise<void>; onCancel: () => void }): ReactNode {
  const [values, setValues] = useState<Values>(props.initial);
  const [fieldErrors, setFieldErrors] = useState<FieldError[]>([]);
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const prefix = useId().replace(/:/g, '');
  const specs = props.specs.filter((s) => !(s.createOnly && props.mode === 'edit'));
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setFieldErrors([]);
    setFormError(null);
    try {
      await props.onSubmit(bodyOf(specs, values, props.mode));
    } catch (err) {
      if (err instanceof ApiError) {
        setFieldErrors(err.fields);
        const shown = err.fields.filter((f) => specs.some((s) => errorsFor([f], s.key).length));
        setFormError(shown.length === err.fields.length && err.fields.length ? 'Please correct the fields marked below.' : err.message);
      } else setFormError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="resource-form" aria-label={props.title} onSubmit={submit} noValidate>
      <h3>{props.title}</h3>
      {formError && (
        <p className="form-error" role="alert">
          {formError}
        </p>
      )}
      <div className="fields">
        {specs.map((s) => (
          <Field key={s.key} idPrefix={prefix} spec={s} value={values[s.key]} errors={errorsFor(fieldErrors, s.key)} onChange={(v) => setValues((old) => ({ ...old, [s.key]: v }))} />
        ))}
      </div>
      <div className="actions">
        <button type="submit" disabled={busy}>
          {props.submitLabel}
        </button>
        <button type="button" className="secondary" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
