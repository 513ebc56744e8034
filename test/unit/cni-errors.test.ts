import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CniError,
  CniErrorCode,
  ERR_INVALID_ENV,
  FAST_ERROR_CODES,
  FastErrorCode,
  SPEC_ERROR_CODES,
  toCniError,
} from '../../src/model/cni/errors.js';
import { asStatusError, limitedConnectivity, pluginNotAvailable } from '../../src/model/cni/status.js';
import { SUPPORTED_VERSIONS } from '../../src/model/cni/versions.js';

test('spec error codes have the spec values', () => {
  assert.deepEqual(
    { ...CniErrorCode },
    {
      IncompatibleVersion: 1,
      UnsupportedField: 2,
      UnknownContainer: 3,
      InvalidEnvironmentVariables: 4,
      IoFailure: 5,
      DecodingFailure: 6,
      InvalidNetworkConfig: 7,
      TryAgainLater: 11,
      PluginNotAvailable: 50,
      LimitedConnectivity: 51,
    },
  );
  assert.equal(ERR_INVALID_ENV, 4);
  assert.deepEqual([...SPEC_ERROR_CODES].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 11, 50, 51]);
});

test("Fast's own codes are 100 and above", () => {
  assert.deepEqual(
    { ...FastErrorCode },
    { PoolExhausted: 100, NoPoolForPod: 101, StaticAddressConflict: 102, DatapathFailure: 103, Internal: 104 },
  );
  for (const code of FAST_ERROR_CODES) assert.ok(code >= 100);
});

test('toJSON produces the spec error output for every version', () => {
  for (const v of SUPPORTED_VERSIONS) {
    const withDetails = new CniError(7, 'bad mtu', 'mtu must be an integer');
    assert.deepEqual(withDetails.toJSON(v), { cniVersion: v, code: 7, msg: 'bad mtu', details: 'mtu must be an integer' });
    assert.deepEqual(JSON.parse(JSON.stringify(withDetails.toJSON(v))), withDetails.toJSON(v));
    const bare = new CniError(11, 'agent unreachable');
    assert.deepEqual(bare.toJSON(v), { cniVersion: v, code: 11, msg: 'agent unreachable' });
    assert.ok(!('details' in bare.toJSON(v)));
  }
});

test('CniError is an Error with a readable message', () => {
  const e = new CniError(4, 'CNI_IFNAME is empty', '""');
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'CniError');
  assert.equal(e.message, 'CNI_IFNAME is empty; ""');
  assert.equal(new CniError(4, 'x').message, 'x');
});

test('toCniError keeps CniErrors and wraps anything else as internal', () => {
  const original = new CniError(100, 'pool exhausted');
  assert.equal(toCniError(original), original);
  const wrapped = toCniError(new TypeError('boom'));
  assert.equal(wrapped.code, FastErrorCode.Internal);
  assert.equal(wrapped.details, 'boom');
  assert.equal(toCniError('text').details, 'text');
});

test('STATUS errors use 50 and 51, and Fast codes fold into 50', () => {
  assert.equal(pluginNotAvailable('agent down').code, 50);
  assert.equal(limitedConnectivity('datapath not loaded').code, 51);
  assert.equal(asStatusError(new CniError(103, 'datapath failure')).code, 50);
  assert.equal(asStatusError(new CniError(103, 'datapath failure')).msg, 'datapath failure');
  assert.equal(asStatusError(new CniError(1, 'bad version')).code, 1);
  assert.equal(asStatusError(new CniError(51, 'limited')).code, 51);
});
