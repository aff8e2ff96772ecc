import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { elementName, IANA_IDS, ianaElement, REVERSE_PEN } from '../src/collect/iana.js';

describe('IANA IPFIX information elements', () => {
  it('knows the well-known elements with their types', () => {
    assert.deepEqual(ianaElement(1), { name: 'octetDeltaCount', type: 'unsigned64' });
    assert.deepEqual(ianaElement(2), { name: 'packetDeltaCount', type: 'unsigned64' });
    assert.deepEqual(ianaElement(4), { name: 'protocolIdentifier', type: 'unsigned8' });
    assert.deepEqual(ianaElement(6), { name: 'tcpControlBits', type: 'unsigned16' });
    assert.deepEqual(ianaElement(7), { name: 'sourceTransportPort', type: 'unsigned16' });
    assert.deepEqual(ianaElement(8), { name: 'sourceIPv4Address', type: 'ipv4Address' });
    assert.deepEqual(ianaElement(11), { name: 'destinationTransportPort', type: 'unsigned16' });
    assert.deepEqual(ianaElement(12), { name: 'destinationIPv4Address', type: 'ipv4Address' });
    assert.deepEqual(ianaElement(27), { name: 'sourceIPv6Address', type: 'ipv6Address' });
    assert.deepEqual(ianaElement(56), { name: 'sourceMacAddress', type: 'macAddress' });
    assert.deepEqual(ianaElement(82), { name: 'interfaceName', type: 'string' });
    assert.deepEqual(ianaElement(150), { name: 'flowStartSeconds', type: 'dateTimeSeconds' });
    assert.deepEqual(ianaElement(152), { name: 'flowStartMilliseconds', type: 'dateTimeMilliseconds' });
    assert.deepEqual(ianaElement(154), { name: 'flowStartMicroseconds', type: 'dateTimeMicroseconds' });
    assert.deepEqual(ianaElement(156), { name: 'flowStartNanoseconds', type: 'dateTimeNanoseconds' });
    assert.deepEqual(ianaElement(276), { name: 'dataRecordsReliability', type: 'boolean' });
    assert.deepEqual(ianaElement(291), { name: 'basicList', type: 'basicList' });
    assert.deepEqual(ianaElement(292), { name: 'subTemplateList', type: 'subTemplateList' });
    assert.deepEqual(ianaElement(293), { name: 'subTemplateMultiList', type: 'subTemplateMultiList' });
    assert.deepEqual(ianaElement(311), { name: 'samplingProbability', type: 'float64' });
    assert.deepEqual(ianaElement(434), { name: 'mibObjectValueInteger', type: 'signed32' });
    assert.equal(ianaElement(0), undefined);
    assert.equal(ianaElement(105), undefined, 'NetFlow v9 compatibility range has no IANA name');
    assert.equal(ianaElement(99999), undefined);
  });

  it('names enterprise, reverse and unknown elements', () => {
    assert.equal(elementName(0, 1), 'octetDeltaCount');
    assert.equal(elementName(REVERSE_PEN, 1), 'reverseOctetDeltaCount');
    assert.equal(elementName(29305, 2), 'reversePacketDeltaCount');
    assert.equal(elementName(29305, 6), 'reverseTcpControlBits');
    assert.equal(elementName(29305, 60000), 'e29305id60000');
    assert.equal(elementName(9, 12235), 'e9id12235');
    assert.equal(elementName(0, 40000), 'e0id40000');
  });

  it('has unique names, ascending ids and a valid type for every entry', () => {
    assert.ok(IANA_IDS.length > 450, `only ${IANA_IDS.length} elements`);
    for (let i = 1; i < IANA_IDS.length; i++) assert.ok(IANA_IDS[i] > IANA_IDS[i - 1]);
    const names = new Set<string>();
    for (const id of IANA_IDS) {
      const e = ianaElement(id);
      assert.ok(e, `id ${id}`);
      assert.ok(e.type, `type of ${id}`);
      assert.match(e.name, /^[A-Za-z][A-Za-z0-9]*$/);
      assert.ok(!names.has(e.name), `duplicate ${e.name}`);
      names.add(e.name);
    }
    assert.equal(IANA_IDS[0], 1);
    assert.ok(IANA_IDS[IANA_IDS.length - 1] >= 500);
  });
});
