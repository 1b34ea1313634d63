/**
 * Reading the Bicep files as text, without a Bicep compiler: comment stripping, the declaration
 * blocks the tests look at, and a small parser for Bicep object and array literals whose leaves are
 * kept as raw expression text (string literals are unquoted).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(__dirname, '..', '..', '..');
export const infraDir = join(repoRoot, 'infra');

export const GUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

export function readRepoFile(relativePath: string): string {
  return readFileSync(join(repoRoot, relativePath), 'utf8');
}

export function infraFileExists(relativePath: string): boolean {
  return existsSync(join(infraDir, relativePath));
}

/** A Bicep file of infra/, without its comments. */
export function readBicep(relativePath: string): string {
  return stripComments(readFileSync(join(infraDir, relativePath), 'utf8'));
}

/** Index just past the string literal that starts at `start` (a `'`), including `${...}` holes and `'''` strings. */
function skipString(text: string, start: number): number {
  if (text.startsWith("'''", start)) {
    const end = text.indexOf("'''", start + 3);
    if (end < 0) throw new Error(`unterminated ''' string at ${start}`);
    return end + 3;
  }
  let i = start + 1;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '\\') {
      i += 2;
    } else if (ch === "'") {
      return i + 1;
    } else if (ch === '$' && text[i + 1] === '{') {
      i = skipBalanced(text, i + 1);
    } else {
      i += 1;
    }
  }
  throw new Error(`unterminated string at ${start}`);
}

/** Index just past the bracket group opening at `start` (`{`, `[` or `(`), skipping strings inside. */
export function skipBalanced(text: string, start: number): number {
  const open = text[start];
  const close = open === '{' ? '}' : open === '[' ? ']' : ')';
  let depth = 0;
  let i = start;
  while (i < text.length) {
    const ch = text[i];
    if (ch === "'") {
      i = skipString(text, i);
      continue;
    }
    if (ch === open) depth += 1;
    else if (ch === close) {
      depth -= 1;
      if (depth === 0) return i + 1;
    }
    i += 1;
  }
  throw new Error(`unbalanced ${open} at ${start}`);
}

export function stripComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text.charAt(i);
    if (ch === "'") {
      const end = skipString(text, i);
      out += text.slice(i, end);
      i = end;
    } else if (ch === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i += 1;
    } else if (ch === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
    } else {
      out += ch;
      i += 1;
    }
  }
  return out;
}

/** The expression of `var <name> = <expression>` (up to the next top-level declaration). */
export function varExpression(text: string, name: string): string {
  const match = new RegExp(`^var ${name}\\s*=\\s*`, 'm').exec(text);
  if (!match) throw new Error(`var ${name} not found`);
  let i = match.index + match[0].length;
  const start = i;
  // The expression ends at the first newline outside brackets that is followed by a line that
  // does not continue it (continuations start with `?` or `:` in formatted Bicep).
  while (i < text.length) {
    const ch = text[i];
    if (ch === "'") {
      i = skipString(text, i);
    } else if (ch === '{' || ch === '[' || ch === '(') {
      i = skipBalanced(text, i);
    } else if (ch === '\n') {
      const rest = text.slice(i + 1);
      if (!/^\s*[?:]/.test(rest)) break;
      i += 1;
    } else {
      i += 1;
    }
  }
  return text.slice(start, i).trim();
}

/** Every top-level `{...}` object literal inside an expression (e.g. both branches of a ternary). */
export function objectLiterals(expression: string): string[] {
  const found: string[] = [];
  let i = 0;
  while (i < expression.length) {
    const ch = expression[i];
    if (ch === "'") {
      i = skipString(expression, i);
    } else if (ch === '{') {
      const end = skipBalanced(expression, i);
      found.push(expression.slice(i, end));
      i = end;
    } else {
      i += 1;
    }
  }
  return found;
}

/** A resource declaration's body: `resource <symbol> '<type>' = ... {` up to its closing brace. */
export interface ResourceBlock {
  symbol: string;
  type: string;
  body: string;
}

export function resourceBlocks(text: string): ResourceBlock[] {
  const blocks: ResourceBlock[] = [];
  const declaration = /^\s*resource (\w+) '([^']+)'(?: existing)? = /gm;
  let match: RegExpExecArray | null;
  while ((match = declaration.exec(text))) {
    const open = text.indexOf('{', match.index + match[0].length);
    const end = skipBalanced(text, open);
    blocks.push({ symbol: match[1]!, type: match[2]!, body: text.slice(open, end) });
  }
  return blocks;
}

// ---- Bicep object / array literals ------------------------------------------------------------

/** Raw expression text, kept apart from string literals so a test can tell them apart. */
export class Expression {
  constructor(readonly text: string) {}
}

export type BicepNode = string | Expression | BicepNode[] | { [key: string]: BicepNode };

class Parser {
  private i = 0;
  constructor(private readonly text: string) {}

  parse(): BicepNode {
    const value = this.value();
    this.skipSpace(true);
    if (this.i < this.text.length) throw new Error(`trailing text: ${this.text.slice(this.i, this.i + 40)}`);
    return value;
  }

  private skipSpace(newlines: boolean): void {
    while (this.i < this.text.length) {
      const ch = this.text[this.i]!;
      if (ch === ' ' || ch === '\t' || ch === '\r' || (newlines && (ch === '\n' || ch === ','))) this.i += 1;
      else break;
    }
  }

  private value(): BicepNode {
    this.skipSpace(true);
    const ch = this.text[this.i];
    if (ch === '{') return this.object();
    if (ch === '[' && !this.looksLikeForExpression()) return this.array();
    return this.expression();
  }

  private looksLikeForExpression(): boolean {
    return /^\[\s*for\b/.test(this.text.slice(this.i));
  }

  private object(): { [key: string]: BicepNode } {
    const result: { [key: string]: BicepNode } = {};
    this.i += 1; // {
    for (;;) {
      this.skipSpace(true);
      if (this.text[this.i] === '}') {
        this.i += 1;
        return result;
      }
      let key: string;
      if (this.text[this.i] === "'") {
        const end = skipString(this.text, this.i);
        key = this.text.slice(this.i + 1, end - 1);
        this.i = end;
      } else {
        const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.i));
        if (!match) throw new Error(`expected a key at: ${this.text.slice(this.i, this.i + 40)}`);
        key = match[0];
        this.i += key.length;
      }
      this.skipSpace(false);
      if (this.text[this.i] !== ':') throw new Error(`expected ':' after ${key}`);
      this.i += 1;
      result[key] = this.value();
    }
  }

  private array(): BicepNode[] {
    const result: BicepNode[] = [];
    this.i += 1; // [
    for (;;) {
      this.skipSpace(true);
      if (this.text[this.i] === ']') {
        this.i += 1;
        return result;
      }
      result.push(this.value());
    }
  }

  /** Up to the end of the line, a top-level `,`, or the enclosing `}` / `]`. */
  private expression(): BicepNode {
    this.skipSpace(false);
    const start = this.i;
    while (this.i < this.text.length) {
      const ch = this.text[this.i]!;
      if (ch === "'") this.i = skipString(this.text, this.i);
      else if (ch === '{' || ch === '[' || ch === '(') this.i = skipBalanced(this.text, this.i);
      else if (ch === '\n' || ch === ',' || ch === '}' || ch === ']') break;
      else this.i += 1;
    }
    const raw = this.text.slice(start, this.i).trim();
    if (
      raw.startsWith("'") &&
      !raw.startsWith("'''") &&
      skipString(raw, 0) === raw.length &&
      !raw.includes('${')
    ) {
      return raw.slice(1, -1).replace(/\\'/g, "'");
    }
    return new Expression(raw);
  }
}

export function parseBicepLiteral(text: string): BicepNode {
  return new Parser(text).parse();
}

export function isObject(node: BicepNode | undefined): node is { [key: string]: BicepNode } {
  return typeof node === 'object' && !(node instanceof Expression) && !Array.isArray(node);
}

/** The `param <name> <type> = <default>` default as raw text, or undefined. */
export function paramDefault(text: string, name: string): string | undefined {
  const match = new RegExp(`^param ${name} \\w+ = (.+)$`, 'm').exec(text);
  return match?.[1]?.trim();
}

export function paramNames(text: string): string[] {
  return [...text.matchAll(/^param (\w+)\b/gm)].map((m) => m[1]!);
}

export function outputNames(text: string): string[] {
  return [...text.matchAll(/^output (\w+)\b/gm)].map((m) => m[1]!);
}

export function bicepFiles(): string[] {
  return ['main.bicep', ...moduleFiles()];
}

export function moduleFiles(): string[] {
  return [
    'app/identity.bicep',
    'app/monitoring.bicep',
    'app/storage.bicep',
    'app/key-vault.bicep',
    'app/function-app.bicep',
    'app/function-app-settings.bicep',
    'app/entra-app.bicep',
    'app/entra-app-identifier-uri.bicep',
    'app/rbac.bicep',
    'app/token-readers.bicep',
  ];
}

// ---- parameter declarations ---------------------------------------------------------------------

/** A `param` of a Bicep file with the decorators that constrain its value. */
export interface ParamDeclaration {
  name: string;
  type: string;
  /** Raw default expression, if any. */
  defaultValue?: string;
  allowed?: BicepNode[];
  minLength?: number;
  maxLength?: number;
  minValue?: number;
  maxValue?: number;
  secure: boolean;
}

/** Every `param` of a Bicep file (comments stripped), with its decorators. */
export function paramDeclarations(text: string): ParamDeclaration[] {
  const declarations: ParamDeclaration[] = [];
  let decorators: { name: string; argument: string }[] = [];
  let i = 0;
  while (i < text.length) {
    const rest = text.slice(i);
    const blank = /^\s+/.exec(rest);
    if (blank) {
      i += blank[0].length;
      continue;
    }
    const decorator = /^@(\w+)\(/.exec(rest);
    if (decorator) {
      const open = i + decorator[0].length - 1;
      const end = skipBalanced(text, open);
      decorators.push({ name: decorator[1]!, argument: text.slice(open + 1, end - 1).trim() });
      i = end;
      continue;
    }
    const param = /^param (\w+) (\w+)(?: = (.+))?$/m.exec(rest);
    if (param && param.index === 0) {
      const declaration: ParamDeclaration = {
        name: param[1]!,
        type: param[2]!,
        ...(param[3] === undefined ? {} : { defaultValue: param[3].trim() }),
        secure: false,
      };
      for (const { name, argument } of decorators) {
        if (name === 'allowed') declaration.allowed = parseBicepLiteral(argument) as BicepNode[];
        else if (name === 'minLength') declaration.minLength = Number(argument);
        else if (name === 'maxLength') declaration.maxLength = Number(argument);
        else if (name === 'minValue') declaration.minValue = Number(argument);
        else if (name === 'maxValue') declaration.maxValue = Number(argument);
        else if (name === 'secure') declaration.secure = true;
      }
      declarations.push(declaration);
      decorators = [];
      i += param[0].length;
      continue;
    }
    // Any other statement: skip its line (and any bracket group it opens), forgetting decorators.
    decorators = [];
    let j = i;
    while (j < text.length && text[j] !== '\n') {
      const ch = text[j];
      if (ch === "'") j = skipString(text, j);
      else if (ch === '{' || ch === '[' || ch === '(') j = skipBalanced(text, j);
      else j += 1;
    }
    i = j;
  }
  return declarations;
}

/** A parameter value as ARM would receive it. */
export type ParamValue = string | number | boolean | ParamValue[] | { [key: string]: ParamValue };

/** What is wrong with `value` for `declaration` (type, @allowed, lengths, ranges); empty when nothing. */
export function paramViolations(declaration: ParamDeclaration, value: ParamValue): string[] {
  const problems: string[] = [];
  const kind = Array.isArray(value)
    ? 'array'
    : typeof value === 'number'
      ? 'int'
      : typeof value === 'boolean'
        ? 'bool'
        : typeof value === 'string'
          ? 'string'
          : 'object';
  if (kind !== declaration.type)
    problems.push(`${declaration.name}: ${kind} given, ${declaration.type} declared`);
  if (declaration.allowed) {
    const allowed = declaration.allowed.map((node) =>
      node instanceof Expression ? Number(node.text) : node,
    );
    // An @allowed on an array parameter constrains each element (Bicep's semantics).
    for (const item of Array.isArray(value) ? value : [value]) {
      if (!allowed.includes(item as never))
        problems.push(`${declaration.name}: ${JSON.stringify(item)} is not allowed`);
    }
  }
  const length = typeof value === 'string' || Array.isArray(value) ? value.length : undefined;
  if (length !== undefined && declaration.minLength !== undefined && length < declaration.minLength)
    problems.push(`${declaration.name}: shorter than ${declaration.minLength}`);
  if (length !== undefined && declaration.maxLength !== undefined && length > declaration.maxLength)
    problems.push(`${declaration.name}: longer than ${declaration.maxLength}`);
  if (typeof value === 'number' && declaration.minValue !== undefined && value < declaration.minValue)
    problems.push(`${declaration.name}: below ${declaration.minValue}`);
  if (typeof value === 'number' && declaration.maxValue !== undefined && value > declaration.maxValue)
    problems.push(`${declaration.name}: above ${declaration.maxValue}`);
  return problems;
}
