// A small EC2 price list in the AWS Price List API's own shape: one product per instance type,
// region, operating system, tenancy, capacity status and pre-installed software, each with its
// OnDemand (and, for the plain Linux product, a Reserved) term. The variants are there so that a
// client that forgets a filter gets several products for one type and must notice.

import { createHash } from 'node:crypto';

export interface PriceProduct {
  sku: string;
  attributes: Record<string, string>;
  onDemandUsd: string;
  /** The product as the API returns it: one JSON document per PriceList entry. */
  document(): string;
}

/** us-east-1 on-demand Linux list prices (USD per hour) and vCPUs, as AWS listed them in 2025. */
const BASE: Record<string, { usd: number; vcpus: number }> = {
  't3.medium': { usd: 0.0416, vcpus: 2 },
  'm5.large': { usd: 0.096, vcpus: 2 },
  'm5.xlarge': { usd: 0.192, vcpus: 4 },
  'm5.2xlarge': { usd: 0.384, vcpus: 8 },
  'g4dn.xlarge': { usd: 0.526, vcpus: 4 },
  'g4dn.2xlarge': { usd: 0.752, vcpus: 8 },
  'g5.xlarge': { usd: 1.006, vcpus: 4 },
  'g5.2xlarge': { usd: 1.212, vcpus: 8 },
  'g6.xlarge': { usd: 0.8048, vcpus: 4 },
};

/** Regions served, their Price List location names, and a price ratio to us-east-1 (a model, near the list). */
export const PRICE_REGIONS: Record<string, { location: string; ratio: number }> = {
  'us-east-1': { location: 'US East (N. Virginia)', ratio: 1 },
  'us-west-2': { location: 'US West (Oregon)', ratio: 1 },
  'eu-west-1': { location: 'EU (Ireland)', ratio: 1.115 },
  'eu-central-1': { location: 'EU (Frankfurt)', ratio: 1.2 },
};

const PUBLICATION_DATE = '2026-11-01T00:00:00Z';
const ON_DEMAND = 'JRTCKXETXF';
const PER_HOUR = '6YS6EN2CT7';

interface Variant {
  operatingSystem: string;
  tenancy: string;
  capacitystatus: string;
  preInstalledSw: string;
  licenseModel: string;
  price: (usd: number, vcpus: number) => number;
}

const VARIANTS: Variant[] = [
  { operatingSystem: 'Linux', tenancy: 'Shared', capacitystatus: 'Used', preInstalledSw: 'NA', licenseModel: 'No License required', price: (p) => p },
  { operatingSystem: 'Linux', tenancy: 'Shared', capacitystatus: 'UnusedCapacityReservation', preInstalledSw: 'NA', licenseModel: 'No License required', price: (p) => p },
  // Instances inside a capacity reservation are billed through the reservation: listed at 0.
  { operatingSystem: 'Linux', tenancy: 'Shared', capacitystatus: 'AllocatedCapacityReservation', preInstalledSw: 'NA', licenseModel: 'No License required', price: () => 0 },
  { operatingSystem: 'Linux', tenancy: 'Dedicated', capacitystatus: 'Used', preInstalledSw: 'NA', licenseModel: 'No License required', price: (p) => p * 1.1 },
  { operatingSystem: 'Linux', tenancy: 'Shared', capacitystatus: 'Used', preInstalledSw: 'SQL Std', licenseModel: 'No License required', price: (p, v) => p + 0.12 * v },
  { operatingSystem: 'Windows', tenancy: 'Shared', capacitystatus: 'Used', preInstalledSw: 'NA', licenseModel: 'No License required', price: (p, v) => p + 0.046 * v },
];

/** A stable SKU per product (the real ones are 16 upper-case letters and digits). */
function skuOf(...parts: string[]): string {
  return createHash('sha256').update(parts.join('|')).digest('hex').slice(0, 16).toUpperCase();
}

function product(regionCode: string, instanceType: string, variant: Variant, usd: number): PriceProduct {
  const { location } = PRICE_REGIONS[regionCode]!;
  const sku = skuOf(regionCode, instanceType, variant.operatingSystem, variant.tenancy, variant.capacitystatus, variant.preInstalledSw);
  const attributes: Record<string, string> = {
    servicecode: 'AmazonEC2',
    servicename: 'Amazon Elastic Compute Cloud',
    productFamily: 'Compute Instance',
    regionCode,
    location,
    locationType: 'AWS Region',
    instanceType,
    instanceFamily: instanceType.startsWith('g') ? 'GPU instance' : 'General purpose',
    vcpu: String(BASE[instanceType]?.vcpus ?? 2),
    operatingSystem: variant.operatingSystem,
    tenancy: variant.tenancy,
    capacitystatus: variant.capacitystatus,
    preInstalledSw: variant.preInstalledSw,
    licenseModel: variant.licenseModel,
    operation: variant.operatingSystem === 'Windows' ? 'RunInstances:0002' : 'RunInstances',
    usagetype: `${variant.tenancy === 'Dedicated' ? 'DedicatedUsage' : 'BoxUsage'}:${instanceType}`,
  };
  const onDemandUsd = usd.toFixed(10);
  return {
    sku,
    attributes,
    onDemandUsd,
    document() {
      const term = (code: string, dimension: Record<string, unknown>, termAttributes: Record<string, string>) => ({
        [`${sku}.${code}`]: {
          offerTermCode: code,
          sku,
          effectiveDate: PUBLICATION_DATE,
          priceDimensions: { [`${sku}.${code}.${PER_HOUR}`]: { rateCode: `${sku}.${code}.${PER_HOUR}`, beginRange: '0', endRange: 'Inf', appliesTo: [], ...dimension } },
          termAttributes,
        },
      });
      const terms: Record<string, unknown> = {
        OnDemand: term(ON_DEMAND, { unit: 'Hrs', description: `$${usd} per On Demand ${variant.operatingSystem} ${instanceType} Instance Hour`, pricePerUnit: { USD: onDemandUsd } }, {}),
      };
      if (variant.capacitystatus === 'Used' && variant.tenancy === 'Shared' && variant.preInstalledSw === 'NA') {
        terms.Reserved = term('4NA7Y494T4', { unit: 'Hrs', description: 'Linux/UNIX (Amazon VPC), 1 year, No Upfront', pricePerUnit: { USD: (usd * 0.62).toFixed(10) } }, { LeaseContractLength: '1yr', OfferingClass: 'standard', PurchaseOption: 'No Upfront' });
      }
      return JSON.stringify({ product: { productFamily: 'Compute Instance', attributes, sku }, serviceCode: 'AmazonEC2', terms, version: '20261101000000', publicationDate: PUBLICATION_DATE });
    },
  };
}

/** The whole list, in a stable order (paging tokens are offsets into it). */
export class PriceCatalogue {
  #products: PriceProduct[] = [];
  readonly #overrides = new Map<string, number>();

  constructor() {
    this.#build();
  }

  get products(): readonly PriceProduct[] {
    return this.#products;
  }

  /** Sets the Linux, shared, used, no-software on-demand price of one type in one region (others follow it). */
  setOnDemandPrice(regionCode: string, instanceType: string, usdPerHour: number): void {
    if (!PRICE_REGIONS[regionCode]) throw new Error(`the emulated price list has no region ${regionCode} (it has ${Object.keys(PRICE_REGIONS).join(', ')})`);
    if (!(usdPerHour >= 0)) throw new Error('a price is a number >= 0');
    this.#overrides.set(`${regionCode}|${instanceType}`, usdPerHour);
    this.#build();
  }

  #build(): void {
    const types = new Set([...Object.keys(BASE), ...[...this.#overrides.keys()].map((k) => k.split('|')[1]!)]);
    this.#products = [];
    for (const [regionCode, { ratio }] of Object.entries(PRICE_REGIONS)) {
      for (const instanceType of types) {
        const base = this.#overrides.get(`${regionCode}|${instanceType}`) ?? (BASE[instanceType] ? Math.round(BASE[instanceType].usd * ratio * 10_000) / 10_000 : undefined);
        if (base === undefined) continue;
        const vcpus = BASE[instanceType]?.vcpus ?? 2;
        for (const variant of VARIANTS) this.#products.push(product(regionCode, instanceType, variant, variant.price(base, vcpus)));
      }
    }
  }
}
