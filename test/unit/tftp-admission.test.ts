import t from 'tap';
import { admit, type AdmissionLimits } from '../../src/tftp/admission.js';

const L: AdmissionLimits = { maxTransfers: 10, perClient: 3, reservedForKnown: 4 };

t.test('the total comes first, then the per-address cap, then the reservation', async (t) => {
  t.equal(admit({ total: 0, ofClient: 0, unknown: 0 }, false, L), 'ok');
  t.equal(admit({ total: 10, ofClient: 0, unknown: 0 }, true, L), 'busy', 'full is full, even for a known client');
  t.equal(admit({ total: 10, ofClient: 3, unknown: 6 }, false, L), 'busy', 'the total is named when every limit is hit');
  t.equal(admit({ total: 5, ofClient: 3, unknown: 0 }, true, L), 'busy-client', 'a known client too is held to its share');
  t.equal(admit({ total: 5, ofClient: 2, unknown: 0 }, true, L), 'ok');
});

t.test('unknown clients share maxTransfers − reservedForKnown; known ones take the rest', async (t) => {
  t.equal(admit({ total: 5, ofClient: 0, unknown: 5 }, false, L), 'ok', '5 < 6');
  t.equal(admit({ total: 6, ofClient: 0, unknown: 6 }, false, L), 'busy-unknown', 'the unknown share is used up');
  t.equal(admit({ total: 6, ofClient: 0, unknown: 6 }, true, L), 'ok', 'a known client gets a reserved slot');
  t.equal(admit({ total: 9, ofClient: 0, unknown: 6 }, true, L), 'ok');
  t.equal(admit({ total: 0, ofClient: 0, unknown: 0 }, false, { ...L, reservedForKnown: 0 }), 'ok');
  t.equal(admit({ total: 9, ofClient: 0, unknown: 9 }, false, { ...L, reservedForKnown: 0 }), 'ok', 'no reservation: unknowns may take every slot');
  t.equal(admit({ total: 0, ofClient: 0, unknown: 0 }, false, { ...L, reservedForKnown: 10 }), 'busy-unknown', 'all reserved: unknowns get none');
});
