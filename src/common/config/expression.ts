/**
 * A tiny, safe evaluator for the integer arithmetic MetaQ accepts in numeric config values
 * (`maxSegmentSize=1024*1024*1024`, `unflushInterval=10 * 60 * 1000`).
 *
 * Why our own: MetaQ hands the value to the Aviator expression engine. We only need integer
 * arithmetic, and anything that can execute code (`eval`, `Function`) is out of the question for
 * a file an operator edits by hand, so this is a ~100-line recursive-descent parser over
 * `+ - * / %`, unary sign and parentheses.
 */
import { InvalidArgumentError } from '../errors.js';

/** Longest expression accepted; config values are short, so anything longer is a mistake. */
const MAX_LENGTH = 256;
/** Deepest parenthesis / unary-sign nesting; bounds recursion so garbage cannot overflow the stack. */
const MAX_DEPTH = 32;

type Token =
  | { readonly kind: 'num'; readonly value: bigint; readonly pos: number; readonly text: string }
  | { readonly kind: 'op'; readonly op: '+' | '-' | '*' | '/' | '%' | '(' | ')'; readonly pos: number; readonly text: string };

function fail(text: string, why: string): never {
  throw new InvalidArgumentError(`invalid integer expression '${text}': ${why}`);
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i] ?? '';
    if (ch === ' ' || ch === '\t') {
      i++;
      continue;
    }
    if (ch >= '0' && ch <= '9') {
      const start = i;
      while (i < text.length && (text[i] ?? '') >= '0' && (text[i] ?? '') <= '9') i++;
      if (text[i] === '.') fail(text, `only integers are allowed (found a decimal point at position ${i + 1})`);
      const digits = text.slice(start, i);
      tokens.push({ kind: 'num', value: BigInt(digits), pos: start, text: digits });
      continue;
    }
    if (ch === '+' || ch === '-' || ch === '*' || ch === '/' || ch === '%' || ch === '(' || ch === ')') {
      tokens.push({ kind: 'op', op: ch, pos: i, text: ch });
      i++;
      continue;
    }
    fail(text, `unexpected character '${ch}' at position ${i + 1}; only digits, + - * / % and parentheses are allowed`);
  }
  return tokens;
}

/**
 * Evaluates an integer arithmetic expression: decimal integers, binary `+ - * / %`, unary `+`/`-`
 * and parentheses, with the usual precedence. `/` truncates toward zero and `%` keeps the sign of
 * the dividend, as Java's `long` arithmetic (which Aviator uses) does.
 *
 * @param text - the expression, e.g. `1024*1024*1024` or `10 * 60 * 1000`.
 * @returns the value, always a safe integer.
 * @throws {@link InvalidArgumentError} on anything else (empty input, dangling operators, names,
 *   division by zero, results beyond ±(2^53 - 1)); the message says what is wrong and where.
 */
export function evaluateIntegerExpression(text: string): number {
  const source = text.trim();
  if (source === '') fail(text, 'it is empty');
  if (source.length > MAX_LENGTH) fail(source.slice(0, 32) + '...', `longer than ${MAX_LENGTH} characters`);
  const tokens = tokenize(source);
  let index = 0;
  // Intermediate results are BigInt so that overflow is detected exactly instead of silently
  // losing precision in a double; the final value must fit a safe integer.
  const limit = BigInt(Number.MAX_SAFE_INTEGER);
  const checked = (value: bigint): bigint => {
    if (value > limit || value < -limit) fail(source, `the value exceeds ±${Number.MAX_SAFE_INTEGER}`);
    return value;
  };
  const peek = (): Token | undefined => tokens[index];
  const describe = (token: Token | undefined): string =>
    token === undefined ? 'the end of the expression' : `'${token.text}' at position ${token.pos + 1}`;

  const primary = (depth: number): bigint => {
    if (depth > MAX_DEPTH) fail(source, `nested deeper than ${MAX_DEPTH} levels`);
    const token = peek();
    if (token === undefined) fail(source, 'unexpected end of the expression; a number is missing');
    if (token.kind === 'num') {
      index++;
      return checked(token.value);
    }
    if (token.op === '-' || token.op === '+') {
      index++;
      const operand = primary(depth + 1);
      return token.op === '-' ? -operand : operand;
    }
    if (token.op === '(') {
      index++;
      const value = sum(depth + 1);
      const close = peek();
      if (close === undefined || close.kind !== 'op' || close.op !== ')') fail(source, `expected ')' but found ${describe(close)}`);
      index++;
      return value;
    }
    fail(source, `expected a number but found ${describe(token)}`);
  };

  const product = (depth: number): bigint => {
    let value = primary(depth);
    for (let token = peek(); token?.kind === 'op' && (token.op === '*' || token.op === '/' || token.op === '%'); token = peek()) {
      index++;
      const right = primary(depth);
      if (token.op === '*') value = checked(value * right);
      else if (right === 0n) fail(source, 'division by zero');
      // BigInt division truncates toward zero and % takes the dividend's sign, exactly like Java.
      else value = token.op === '/' ? value / right : value % right;
    }
    return value;
  };

  const sum = (depth: number): bigint => {
    let value = product(depth);
    for (let token = peek(); token?.kind === 'op' && (token.op === '+' || token.op === '-'); token = peek()) {
      index++;
      const right = product(depth);
      value = checked(token.op === '+' ? value + right : value - right);
    }
    return value;
  };

  const result = sum(0);
  if (index < tokens.length) fail(source, `unexpected ${describe(peek())}`);
  return Number(result);
}
