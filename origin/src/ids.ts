import { randomBytes } from 'node:crypto'

/** 16 URL-safe characters (96 random bits): video, upload and job ids (docs/architecture.md §2). */
export function newId(): string {
  return randomBytes(12).toString('base64url')
}

export const ID_RE = /^[A-Za-z0-9_-]{16}$/
