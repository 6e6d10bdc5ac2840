/**
 * The heartbeat: gecko's `version` request on an idle connection (metaq-reference §1.4).
 */
import { ConnectionError } from '../../common/errors.js';
import type { ResponseFrame } from '../../protocol/frames.js';
import type { OpaquelessRequest } from './request.js';

/** A heartbeat succeeds on `result 200` (gecko counts any other answer as a failure). */
export function interpretHeartbeat(response: ResponseFrame, _request: OpaquelessRequest, brokerUrl: string): string {
  if (response.type === 'result' && response.code === 200) return response.body.toString('utf8');
  throw new ConnectionError(`heartbeat to ${brokerUrl} answered ${response.type === 'result' ? response.code : 'value'}`);
}
