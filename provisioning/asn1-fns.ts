import forge from 'node-forge';

/**
 * The parts of forge.asn1 and forge.pki that forge 1.x has at run time but @types/node-forge
 * does not declare, typed once here.
 */
export interface FromDerOptions {
  /** Refuse lengths that run past their parent (default true). */
  strict?: boolean;
  /** Refuse bytes after the outer value (default true). */
  parseAllBytes?: boolean;
  /** Try to parse BIT STRING contents as ASN.1 (default true); we never want that. */
  decodeBitStrings?: boolean;
}

/** DER (a binary string) to ASN.1, strictly, BIT STRINGs kept as their raw octets. */
export function fromDer(bytes: string): forge.asn1.Asn1 {
  const options: FromDerOptions = { strict: true, parseAllBytes: true, decodeBitStrings: false };
  return (forge.asn1.fromDer as unknown as (b: string, o: FromDerOptions) => forge.asn1.Asn1)(
    bytes,
    options,
  );
}

/** The TBSCertificate forge would sign (RFC 5280 §4.1.1.1), from the fields set on `cert`. */
export function getTbsCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1 {
  return (
    forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }
  ).getTBSCertificate(cert);
}
