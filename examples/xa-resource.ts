/**
 * The producer's XA resource driven by hand, the way a transaction manager drives it, against
 * the broker that `npm start` runs: start / send / end / prepare / commit, and recover.
 *
 *   npm start                          # in another terminal
 *   npx tsx examples/xa-resource.ts            # one branch, two-phase commit
 *   npx tsx examples/xa-resource.ts prepare    # stop after prepare (simulates a crashed manager)
 *   npx tsx examples/xa-resource.ts recover    # list in-doubt branches of this qualifier and commit them
 *
 * The unique qualifier must be the same on every run (here the default,
 * `XAMessageProducer-<hostname>`): it is how recover finds the branches of an earlier run.
 * METAQ_URL=meta://host:port points it at another broker.
 */
import { randomBytes } from 'node:crypto';
import { createMessageSessionFactory, XaCode, XaError, xaCodeName, XaFlags, type Xid } from '../src/index.js';

const serverUrl = process.env['METAQ_URL'] ?? 'meta://127.0.0.1:8123';
const mode = process.argv[2] ?? 'commit';

const factory = createMessageSessionFactory({ serverUrl });
const producer = factory.createProducer();
try {
  await producer.publish('test'); // before getXAResource: the resource's broker must host the topic
  const xa = producer.getXAResource();
  console.log(`resource ${xa.uniqueQualifier} on ${xa.brokerUrl}`);

  if (mode === 'recover') {
    // What a transaction manager does at start-up: list the in-doubt branches and resolve them
    // from its own log (here: commit all of them).
    const xids = await xa.recover(XaFlags.TMSTARTRSCAN | XaFlags.TMENDRSCAN);
    console.log(`${xids.length} prepared branch(es)`);
    for (const xid of xids) {
      await xa.commit(xid, false);
      console.log(`committed ${xid.formatId}:${xid.globalTransactionId.toString('hex')}`);
    }
  } else {
    // Your transaction manager makes the XIDs; formatId is its namespace.
    const xid: Xid = { formatId: 0x4d515453, globalTransactionId: randomBytes(16), branchQualifier: Buffer.from([1]) };
    xa.setTransactionTimeout(60); // rolled back by the broker if not prepared within 60 s
    await xa.start(xid);
    await xa.send(xid, { topic: 'test', data: `xa message 1 of ${process.pid}` });
    await xa.send(xid, { topic: 'test', data: `xa message 2 of ${process.pid}` });
    await xa.end(xid, XaFlags.TMSUCCESS);
    const vote = await xa.prepare(xid); // forced to the broker's disk before it answers
    console.log(`prepare voted ${xaCodeName(vote)}`);
    if (mode === 'prepare') {
      console.log('stopping after prepare; run with "recover" to finish the branch');
    } else if (vote === XaCode.XA_OK) {
      await xa.commit(xid, false);
      console.log('committed');
    }
  }
} catch (error) {
  if (error instanceof XaError) {
    // XAER_RMFAIL (-7) is retriable: the outcome is unknown, call again (or recover later).
    console.error(`${xaCodeName(error.xaCode)} (retriable: ${error.retriable}): ${error.message}`);
  } else console.error(error);
  process.exitCode = 1;
} finally {
  await factory.close();
}
