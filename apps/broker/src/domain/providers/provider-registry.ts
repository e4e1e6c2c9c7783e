import type { providers } from '../../db/schema/index.ts';
import { AwsEc2Provider } from '../../providers/cloud/aws-ec2.ts';
import { AwsPriceList, type PriceListSource } from '../../providers/cloud/aws-pricing.ts';
import type { CloudProvider } from '../../providers/cloud/cloud-provider.ts';
import { StaticProvider } from '../../providers/cloud/static.ts';
import type { SecretBox } from '../secrets/secret-box.ts';

export type ProviderRow = typeof providers.$inferSelect;

/**
 * Builds the CloudProvider for a provider row, decrypting its secret, and keeps one client per
 * provider version (row id + updated_at) so repeated calls reuse connections.
 */
export class ProviderRegistry {
  readonly #cache = new Map<string, { version: number; provider: CloudProvider }>();

  constructor(
    private readonly secrets: SecretBox,
    /** Tests shorten the retry backoff; production keeps the defaults. */
    private readonly ec2Options: { backoffBaseMs?: number; maxAttempts?: number } = {},
  ) {}

  forRow(row: ProviderRow): CloudProvider {
    const version = row.updatedAt.getTime();
    const hit = this.#cache.get(row.id);
    if (hit && hit.version === version) return hit.provider;
    const provider = this.build(row);
    this.#cache.set(row.id, { version, provider });
    return provider;
  }

  /** A fresh client (not cached): for testing a connection before or after a change. */
  build(row: ProviderRow): CloudProvider {
    if (row.kind === 'static') return new StaticProvider(row.name);
    return new AwsEc2Provider({
      region: row.region!,
      endpoint: row.endpoint,
      credentials:
        row.credentialsMode === 'access-key'
          ? { accessKeyId: row.accessKeyId!, secretAccessKey: this.secrets.open(row.secretCiphertext!, `providers:${row.id}`) }
          : undefined,
      ...this.ec2Options,
    });
  }

  /**
   * The Price List API with this provider's credentials and endpoint (an emulator endpoint serves
   * both APIs; a real provider has none, and the SDK goes to AWS's pricing endpoint).
   */
  priceList(row: ProviderRow): PriceListSource | null {
    if (row.kind !== 'aws-ec2') return null;
    return new AwsPriceList({
      endpoint: row.endpoint,
      credentials: row.credentialsMode === 'access-key' ? { accessKeyId: row.accessKeyId!, secretAccessKey: this.secrets.open(row.secretCiphertext!, `providers:${row.id}`) } : undefined,
    });
  }

  forget(id: string): void {
    this.#cache.delete(id);
  }
}
