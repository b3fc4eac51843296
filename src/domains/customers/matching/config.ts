// The matching configuration (`match.yaml` for the CLI, a section of the estate config for the
// customer domain): which column is which field, the thresholds, the email provider rules, and
// optionally fixed m/u parameters instead of estimating them.
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { COLUMN_ALIASES, type CustomerFieldName } from './columns.js';
import { FIELDS } from './fields.js';
import type { MatchParameters } from './matcher.js';
import { DEFAULT_THRESHOLDS } from './matcher.js';

const fieldNames = Object.keys(COLUMN_ALIASES) as [CustomerFieldName, ...CustomerFieldName[]];
const probability = z.number().gt(0).lt(1);
const unitInterval = z.number().min(0).max(1);

const levelParameter = z.object({ m: probability, u: probability }).strict();

export const MatchConfigSchema = z
  .object({
    /** Column name → customer field; replaces recognition by usual names. */
    columns: z.record(z.string(), z.enum(fieldNames)).optional(),
    thresholds: z
      .object({ link: unitInterval, review: unitInterval })
      .strict()
      .refine((t) => t.review <= t.link, { message: 'review must not exceed link' })
      .optional(),
    /** Default region for phones without a country code. */
    defaultCountry: z
      .string()
      .regex(/^[A-Za-z]{2}$/)
      .optional(),
    email: z
      .object({
        stripPlusTagsEverywhere: z.boolean().optional(),
        rules: z
          .record(
            z.string(),
            z
              .object({
                ignoreDots: z.boolean().optional(),
                stripPlusTag: z.boolean().optional(),
                aliasOf: z.string().optional(),
              })
              .strict(),
          )
          .optional(),
      })
      .strict()
      .optional(),
    /** Fixed parameters: no estimation when given. */
    parameters: z
      .object({
        prior: probability,
        termFrequencyAdjustment: z.boolean().optional(),
        fields: z.record(z.string(), z.record(z.string(), levelParameter)),
      })
      .strict()
      .superRefine((p, ctx) => {
        for (const [field, levels] of Object.entries(p.fields)) {
          const def = FIELDS.find((f) => f.name === field);
          if (!def) {
            ctx.addIssue({
              code: 'custom',
              path: ['fields', field],
              message: `unknown field; one of ${FIELDS.map((f) => f.name).join(', ')}`,
            });
            continue;
          }
          for (const level of Object.keys(levels)) {
            if (!def.levels.includes(level)) {
              ctx.addIssue({
                code: 'custom',
                path: ['fields', field, level],
                message: `unknown level; one of ${def.levels.join(', ')}`,
              });
            }
          }
        }
      })
      .optional(),
  })
  .strict();

export type MatchConfig = z.infer<typeof MatchConfigSchema>;

export interface MatchConfigIssue {
  /** Dotted path of the setting, '' for the document. */
  path: string;
  message: string;
  /** 1-based line of the setting when known. */
  line?: number;
  column?: number;
}

export type MatchConfigResult =
  { ok: true; config: MatchConfig } | { ok: false; issues: MatchConfigIssue[] };

/** Parses and validates a matching configuration written in YAML. */
export function parseMatchConfig(text: string): MatchConfigResult {
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      issues: doc.errors.map((e) => {
        const issue: MatchConfigIssue = { path: '', message: e.message.split('\n')[0]! };
        if (e.linePos?.[0]) {
          issue.line = e.linePos[0].line;
          issue.column = e.linePos[0].col;
        }
        return issue;
      }),
    };
  }
  const parsed = MatchConfigSchema.safeParse(doc.toJS() ?? {});
  if (parsed.success) return { ok: true, config: parsed.data };
  const lineCounter = (offset: number) => {
    let line = 1;
    let lastBreak = -1;
    for (let i = 0; i < offset && i < text.length; i++) {
      if (text.charCodeAt(i) === 10) {
        line++;
        lastBreak = i;
      }
    }
    return { line, column: offset - lastBreak };
  };
  return {
    ok: false,
    issues: parsed.error.issues.map((i) => {
      const path = i.path.map(String);
      const issue: MatchConfigIssue = { path: path.join('.'), message: i.message };
      // The deepest node of the path that exists gives the line.
      for (let n = path.length; n >= 0; n--) {
        const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] };
        if (node && typeof node === 'object' && node.range) {
          Object.assign(issue, lineCounter(node.range[0]));
          break;
        }
      }
      return issue;
    }),
  };
}

/** The parameters a configuration fixes, or undefined when they are to be estimated. */
export function parametersFromConfig(config: MatchConfig): MatchParameters | undefined {
  if (!config.parameters) return undefined;
  return {
    prior: config.parameters.prior,
    fields: config.parameters.fields,
    thresholds: config.thresholds ?? { ...DEFAULT_THRESHOLDS },
    termFrequencyAdjustment: config.parameters.termFrequencyAdjustment ?? true,
  };
}
