import { GetProductsCommand, PricingClient, type Filter } from '@aws-sdk/client-pricing';
import { toProviderError } from './ec2-errors.ts';

/** One on-demand price the Price List API gave for an instance type in a region. */
export interface PriceQuote {
  region: string;
  instanceType: string;
  /** Decimal string (the API's own digits, trimmed): money never passes through a float here. */
  hourlyPrice: string;
  currency: 'USD';
  sku: string;
  effectiveDate: string | null;
}

/** What a price refresh looks up; tests and other clouds can stand behind it. */
export interface PriceListSource {
  /**
   * The on-demand hourly price of each type in the region, for the given operating system, shared
   * tenancy, no pre-installed software, capacity used (not reserved). A type the list does not know,
   * or prices it more than one way, is left out and named in `missing`.
   */
  onDemand(region: string, instanceTypes: string[], operatingSystem: 'Linux' | 'Windows'): Promise<{ quotes: PriceQuote[]; missing: { instanceType: string; why: string }[] }>;
}

export interface AwsPricingOptions {
  /** Where the Price List API answers: AWS serves it from us-east-1 (also ap-south-1, eu-central-1). */
  endpoint?: string | null;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  maxAttempts?: number;
}

interface PriceDocument {
  product?: { sku?: string; attributes?: Record<string, string> };
  terms?: { OnDemand?: Record<string, { effectiveDate?: string; priceDimensions?: Record<string, { unit?: string; pricePerUnit?: Record<string, string> }> }> };
}

/**
 * The AWS Price List Query API through the real `@aws-sdk/client-pricing` (GetProducts), pointed
 * at AWS or at the EC2 emulator, which serves a small list on the same protocol.
 */
export class AwsPriceList implements PriceListSource {
  readonly #client: PricingClient;

  constructor(opts: AwsPricingOptions) {
    this.#client = new PricingClient({
      // The Price List API has no endpoint in most regions; us-east-1 serves every region's prices.
      region: 'us-east-1',
      endpoint: opts.endpoint ?? undefined,
      credentials: opts.credentials,
      maxAttempts: opts.maxAttempts ?? 4,
    });
  }

  async onDemand(region: string, instanceTypes: string[], operatingSystem: 'Linux' | 'Windows'): Promise<{ quotes: PriceQuote[]; missing: { instanceType: string; why: string }[] }> {
    const quotes: PriceQuote[] = [];
    const missing: { instanceType: string; why: string }[] = [];
    for (const instanceType of instanceTypes) {
      const found = await this.#products(region, instanceType, operatingSystem);
      const prices = new Map<string, PriceQuote>();
      for (const doc of found) {
        const quote = quoteOf(doc, region, instanceType);
        if (quote) prices.set(quote.hourlyPrice, quote);
      }
      if (prices.size === 1) quotes.push([...prices.values()][0]!);
      else missing.push({ instanceType, why: prices.size === 0 ? 'not in the price list for this region' : `priced ${prices.size} ways (${[...prices.keys()].join(', ')}): left alone` });
    }
    return { quotes, missing };
  }

  async #products(region: string, instanceType: string, operatingSystem: string): Promise<PriceDocument[]> {
    // Every dimension that multiplies the products of one instance type is pinned: without
    // capacitystatus a capacity reservation's 0.00 comes back, without preInstalledSw SQL Server's price.
    const term = (Field: string, Value: string): Filter => ({ Type: 'TERM_MATCH', Field, Value });
    const Filters = [
      term('regionCode', region),
      term('instanceType', instanceType),
      term('operatingSystem', operatingSystem),
      term('tenancy', 'Shared'),
      term('capacitystatus', 'Used'),
      term('preInstalledSw', 'NA'),
      term('licenseModel', 'No License required'),
    ];
    const docs: PriceDocument[] = [];
    let NextToken: string | undefined;
    do {
      let page;
      try {
        page = await this.#client.send(new GetProductsCommand({ ServiceCode: 'AmazonEC2', Filters, FormatVersion: 'aws_v1', MaxResults: 100, NextToken }));
      } catch (err) {
        throw toProviderError(err, 'Pricing GetProducts');
      }
      // Each entry is a JSON document sent as a string (the SDK wraps it in a lazy JSON string).
      for (const entry of page.PriceList ?? []) docs.push(JSON.parse(String(entry)) as PriceDocument);
      NextToken = page.NextToken || undefined;
    } while (NextToken);
    return docs;
  }
}

const DECIMAL = /^\d+(\.\d+)?$/;

/** The product's on-demand USD per hour, when it is the product asked for and priced per hour. */
function quoteOf(doc: PriceDocument, region: string, instanceType: string): PriceQuote | null {
  const attrs = doc.product?.attributes ?? {};
  if (attrs.instanceType !== instanceType || attrs.regionCode !== region) return null;
  for (const term of Object.values(doc.terms?.OnDemand ?? {})) {
    for (const dim of Object.values(term.priceDimensions ?? {})) {
      const usd = dim.pricePerUnit?.USD;
      if (dim.unit !== 'Hrs' || !usd || !DECIMAL.test(usd)) continue;
      return { region, instanceType, hourlyPrice: trimDecimal(usd), currency: 'USD', sku: doc.product?.sku ?? '', effectiveDate: term.effectiveDate ?? null };
    }
  }
  return null;
}

/** "1.0060000000" → "1.006" (the table keeps 6 decimals; longer tails are rounded by PostgreSQL). */
function trimDecimal(value: string): string {
  return value.includes('.') ? value.replace(/0+$/, '').replace(/\.$/, '') : value;
}
