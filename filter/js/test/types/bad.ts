// Must NOT compile: types.test.mjs checks that the .d.ts rejects misuse (else it says nothing).
import { decodeRecord, nativeFilter, previewEvent } from 'adtap';

decodeRecord('eyJ9', 'avro');
previewEvent('{}', { method: 'GET' });
const n: number = decodeRecord('eyJ9', 'json').type;
void n;
nativeFilter('{}', 'sidecar');
