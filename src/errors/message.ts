/** The message of anything thrown: an Error's message, else the value as a string (a throw of a string, say). */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
