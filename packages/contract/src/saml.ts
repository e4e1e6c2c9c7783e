import { z } from 'zod';

/** IdP metadata import for `saml` auth servers (their settings are in auth-servers.ts). */
const HttpUrl = z
  .string()
  .trim()
  .max(2048)
  .regex(/^https?:\/\/[^\s/?#]+[^\s]*$/i, 'must be an http:// or https:// URL');

/** Read an IdP's metadata into the settings it determines. */
export const ImportIdpMetadata = z
  .strictObject({
    xml: z.string().min(1).max(1_000_000).optional().describe('the metadata document itself'),
    url: HttpUrl.optional().describe('fetched by the broker'),
  })
  .refine((v) => !!v.xml !== !!v.url, { message: 'give either xml or url', path: ['xml'] });

export const IdpMetadata = z.object({
  idpEntityId: z.string(),
  idpSsoUrl: z.string(),
  idpCertificates: z.array(z.string()),
  idpMetadataUrl: z.string().optional(),
});
export type IdpMetadata = z.infer<typeof IdpMetadata>;
