import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';

/**
 * The SP key pair of a `saml` server that signs its AuthnRequests: RSA 2048 with SHA-256 (what every
 * IdP we document accepts; several do not take ECDSA request signatures), and a self-signed
 * certificate for it, valid ten years. IdPs use the certificate only as a wrapper for the public
 * key (they pin it from the SP metadata), so its issuer and lifetime carry no trust.
 *
 * Node makes keys but not certificates; @peculiar/x509 builds them in JavaScript on WebCrypto, and
 * needs the reflect-metadata polyfill, so both load only when a key pair is made.
 */
export async function generateSpKeyPair(serverName: string, now = new Date()): Promise<{ spPrivateKey: string; spCertificate: string }> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);
  const alg = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cn = serverName.replace(/[,+=<>#;"\\]/g, ' ').slice(0, 48);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: `01${randomBytes(15).toString('hex')}`,
    name: `CN=Stagedoor SAML SP ${cn}`,
    notBefore: new Date(now.getTime() - 60 * 60_000),
    notAfter: new Date(now.getTime() + 10 * 365 * 24 * 60 * 60_000),
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const spPrivateKey = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string;
  return { spPrivateKey, spCertificate: cert.toString('pem') };
}
