/**
 * Colours for the `metaq` CLI, through `node:util` `styleText` (no colour library): only when
 * the stream is a terminal and `NO_COLOR` is not set (https://no-color.org), so pipes, files and
 * scripts get plain text.
 */
import { styleText } from 'node:util';

/** The styles the CLI uses. */
export type Style = 'bold' | 'dim' | 'red' | 'yellow' | 'cyan' | 'green';

/** Applies a style to text, or returns the text unchanged when colours are off. */
export type Paint = (style: Style, text: string) => string;

/** True when output to `stream` may be coloured. */
export function colorEnabled(stream: { readonly isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  const noColor = env['NO_COLOR'];
  return stream.isTTY === true && (noColor === undefined || noColor === '');
}

/** No colours. */
export const plain: Paint = (_style, text) => text;

/** A {@link Paint} for `stream`: `styleText` on a terminal without `NO_COLOR`, {@link plain} otherwise. */
export function painterFor(stream: { readonly isTTY?: boolean }, env: NodeJS.ProcessEnv): Paint {
  // Our own check decides (it looks at the stream written to, which may be stderr); styleText's
  // own check (of process.stdout, in newer Node versions) must not undo it.
  return colorEnabled(stream, env) ? (style, text) => styleText(style, text, { validateStream: false }) : plain;
}
