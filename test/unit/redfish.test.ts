import t from 'tap';
import { extendedMessage, resetPlan } from '../../src/power/redfish.js';
import { normaliseFingerprint } from '../../src/power/redfish-http.js';
import { acceptCertificate, checkRedfishSettings, publicRedfishSettings } from '../../src/power/redfish-settings.js';

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

t.test('redfish settings: parsed, checked, shown without the password', async (t) => {
  const bad = (f: string, w: string) => new Error(`${f}: ${w}`);
  const s = checkRedfishSettings({ driver: 'redfish', host: '10.0.0.5', user: 'root', password: 'pw', certSha256: 'ab'.repeat(32) }, bad);
  t.equal(s.port, 443, 'port defaulted');
  t.equal(s.certSha256, Array(32).fill('AB').join(':'), 'fingerprint normalised');
  t.same(publicRedfishSettings(s), { driver: 'redfish', host: '10.0.0.5', port: 443, user: 'root', certSha256: s.certSha256, passwordSet: true });
  t.throws(() => checkRedfishSettings({ driver: 'redfish', host: 'a b', user: 'u', password: 'p' }, bad), /host/);
  t.throws(() => checkRedfishSettings({ driver: 'redfish', host: 'h', user: 'u', password: 'p', certSha256: 'xyz'.repeat(22) }, bad), /certSha256/);
  t.throws(() => checkRedfishSettings({ driver: 'redfish', host: 'h', user: 'u', password: 'p', caPem: 'nope' }, bad), /caPem/);
  const withCa = checkRedfishSettings({ driver: 'redfish', host: 'h', user: 'u', password: 'p', caPem: '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n' }, bad);
  t.match(publicRedfishSettings(withCa), { caSet: true });
  t.notOk('caPem' in publicRedfishSettings(withCa));
  const accepted = acceptCertificate(withCa, 'cd'.repeat(32));
  t.equal(accepted.caPem, undefined, 'accepting a certificate pins it instead of the CA');
  t.equal(accepted.certSha256, Array(32).fill('CD').join(':'));
});
