import { createHash, randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CallrecError } from '../errors.js';

const SHA256 = '2.16.840.1.101.3.4.2.1';

/** What a verified time-stamp token says. */
export interface TimestampInfo {
  /** When the authority saw the hash. */
  genTime: Date;
  /** The signing certificate's subject, as the authority names itself. */
  authority: string;
}

const bad = (message: string) => new CallrecError('ERR_NOT_VERIFIED', `time-stamp token: ${message}`);

/**
 * Asks an RFC 3161 time-stamping authority to stamp `data` (by its SHA-256) and returns the token
 * (DER `ContentInfo`). The request asks for the authority's certificate, so the token verifies
 * on its own. Rejects on a refusal, a malformed reply, or after `timeoutMs`.
 */
export async function requestTimestamp(tsaUrl: string, data: Buffer, timeoutMs: number): Promise<Buffer> {
  const digest = createHash('sha256').update(data).digest();
  const request = new pkijs.TimeStampReq({
    version: 1,
    messageImprint: new pkijs.MessageImprint({
      hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: SHA256 }),
      hashedMessage: new asn1js.OctetString({ valueHex: digest }),
    }),
    nonce: new asn1js.Integer({ valueHex: randomBytes(8) }),
    certReq: true,
  });
  const response = await fetch(tsaUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/timestamp-query' },
    body: Buffer.from(request.toSchema().toBER()),
    signal: AbortSignal.timeout(timeoutMs),
    redirect: 'error',
  });
  if (!response.ok) throw new CallrecError('ERR_TSA', `${tsaUrl} answered HTTP ${response.status}`);
  const reply = pkijs.TimeStampResp.fromBER(await response.arrayBuffer());
  // 0 granted, 1 granted with modifications; anything else is a refusal.
  if (reply.status.status > 1 || !reply.timeStampToken)
    throw new CallrecError('ERR_TSA', `${tsaUrl} refused the request (status ${reply.status.status})`);
  const token = Buffer.from(reply.timeStampToken.toSchema().toBER());
  await verifyTimestamp(token, data);
  return token;
}

/** Checks a token's signature (by the certificate it carries) and that it stamps `data`; throws `ERR_NOT_VERIFIED` saying why. */
export async function verifyTimestamp(token: Buffer, data: Buffer): Promise<TimestampInfo> {
  const digest = createHash('sha256').update(data).digest();
  let signed: pkijs.SignedData;
  let info: pkijs.TSTInfo;
  try {
    signed = new pkijs.SignedData({ schema: pkijs.ContentInfo.fromBER(token).content });
    info = pkijs.TSTInfo.fromBER(signed.encapContentInfo.eContent!.getValue());
  } catch {
    throw bad('not an RFC 3161 token');
  }
  if (info.messageImprint.hashAlgorithm.algorithmId !== SHA256) throw bad('not over a SHA-256 hash');
  if (!Buffer.from(info.messageImprint.hashedMessage.getValue()).equals(digest))
    throw bad('stamps another hash (the manifest was changed)');
  const verified = await signed
    .verify({ signer: 0, data: new Uint8Array(data).buffer, checkChain: false, extendedMode: true })
    .catch((err: { message?: string }) => ({
      signatureVerified: false,
      message: err.message,
      signerCertificate: null,
    }));
  if (!verified.signatureVerified)
    throw bad(`its signature does not verify${verified.message ? ` (${verified.message})` : ''}`);
  const subject = verified.signerCertificate?.subject.typesAndValues
    .map(
      (tv) => `${tv.type === '2.5.4.3' ? 'CN' : tv.type === '2.5.4.10' ? 'O' : tv.type}=${tv.value.valueBlock.value}`,
    )
    .join(', ');
  return { genTime: info.genTime, authority: subject ?? 'unknown' };
}
