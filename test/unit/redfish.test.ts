import t from 'tap';
import { extendedMessage, resetPlan } from '../../src/power/redfish.js';
import { normaliseFingerprint } from '../../src/power/redfish-http.js';

t.test('resetPlan: the BMC\'s AllowableValues, with fallbacks', async (t) => {
  const all = ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'PowerCycle', 'ForceOn'];
  t.same(resetPlan('cycle', all), ['PowerCycle']);
  t.same(resetPlan('cycle', ['On', 'ForceOff', 'ForceRestart']), ['ForceOff', 'On'], 'no PowerCycle: ForceOff then On');
  t.same(resetPlan('cycle', ['ForceRestart']), ['ForceRestart'], 'only a restart left');
  t.same(resetPlan('reset', ['On', 'ForceOff', 'PowerCycle']), ['PowerCycle']);
  t.same(resetPlan('on', ['ForceOn', 'ForceOff']), ['ForceOn']);
  t.same(resetPlan('soft', ['On', 'ForceOff']), undefined, 'no GracefulShutdown: nothing fits');
  t.same(resetPlan('off', undefined), ['ForceOff'], 'a BMC that does not say: the standard value');
});

t.test('extendedMessage: @Message.ExtendedInfo, a task\'s Messages, or error.message', async (t) => {
  t.equal(extendedMessage({ error: { code: 'Base.1.8.GeneralError', message: 'general', '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.SessionLimitExceeded', Message: 'too many sessions' }, { MessageId: 'X.Y' }] } }, ': '), ': too many sessions; X.Y');
  t.equal(extendedMessage({ TaskState: 'Exception', Messages: [{ Message: 'failed to power on' }] }), 'failed to power on');
  t.equal(extendedMessage({ error: { message: 'only this' } }), 'only this');
  t.equal(extendedMessage('not json'), '');
  t.equal(extendedMessage({ error: { '@Message.ExtendedInfo': 'not an array' } }), '');
  t.ok(extendedMessage({ error: { '@Message.ExtendedInfo': [{ Message: 'x'.repeat(2000) }] } }).length <= 500, 'bounded');
});

t.test('normaliseFingerprint: hex with or without colons, any case; anything else refused', async (t) => {
  const hex = 'ab'.repeat(32);
  const canon = Array(32).fill('AB').join(':');
  t.equal(normaliseFingerprint(hex), canon);
  t.equal(normaliseFingerprint(canon.toLowerCase()), canon);
  t.equal(normaliseFingerprint(hex.slice(2)), undefined, '31 bytes');
  t.equal(normaliseFingerprint(`${hex.slice(2)}zz`), undefined, 'not hex');
});
