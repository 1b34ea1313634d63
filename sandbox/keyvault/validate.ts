/** Request validation as the service does it: names, tags, attributes, content type, JSON bodies. */
import { badParameter } from './errors';

const NAME = /^[0-9a-zA-Z-]{1,127}$/;

export function validateName(name: string | undefined): string {
  if (name === undefined || !NAME.test(name)) {
    throw badParameter(`The request URI contains an invalid name: ${name ?? ''}`);
  }
  return name;
}

export function validateTags(tags: unknown): Record<string, string> | undefined {
  if (tags === undefined || tags === null) return undefined;
  if (typeof tags !== 'object' || Array.isArray(tags))
    throw badParameter('Tags must be an object of string values.');
  const entries = Object.entries(tags as Record<string, unknown>);
  if (entries.length > 15)
    throw badParameter('Number of tags exceeds the limit. A maximum of 15 tags is allowed.');
  for (const [key, value] of entries) {
    if (typeof value !== 'string') throw badParameter(`Tag '${key.slice(0, 40)}' must have a string value.`);
    if (key.length > 512)
      throw badParameter('Tag name is too long. The maximum length of a tag name is 512 characters.');
    if (value.length > 256)
      throw badParameter('Tag value is too long. The maximum length of a tag value is 256 characters.');
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

export interface ParsedAttributes {
  enabled: boolean | undefined;
  nbf: number | undefined;
  exp: number | undefined;
}

export function validateAttributes(value: unknown): ParsedAttributes {
  if (value === undefined || value === null) return { enabled: undefined, nbf: undefined, exp: undefined };
  if (typeof value !== 'object') throw badParameter('Property attributes has invalid value');
  const raw = value as Record<string, unknown>;
  const seconds = (key: string): number | undefined => {
    const v = raw[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v))
      throw badParameter(`Property ${key} has invalid value`);
    return v;
  };
  const enabled = raw.enabled;
  if (enabled !== undefined && enabled !== null && typeof enabled !== 'boolean') {
    throw badParameter('Property enabled has invalid value');
  }
  return {
    enabled: typeof enabled === 'boolean' ? enabled : undefined,
    nbf: seconds('nbf'),
    exp: seconds('exp'),
  };
}

export function validateContentType(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw badParameter('Property contentType has invalid value');
  if (value.length > 255)
    throw badParameter('Content type is too long. The maximum length is 255 characters.');
  return value;
}

export function parseJson(body: string): Record<string, unknown> {
  if (body.trim() === '') throw badParameter('The request body is empty.');
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw badParameter('The request body is not valid JSON.');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    throw badParameter('The request body is not a JSON object.');
  return parsed as Record<string, unknown>;
}

// ---- paging -------------------------------------------------------------------------------------
