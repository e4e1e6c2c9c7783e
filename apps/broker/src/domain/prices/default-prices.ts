/**
 * The shipped price table: EC2 on-demand, Linux, shared tenancy, per instance-hour in USD, as listed
 * by AWS around **2025-06** for us-east-1. These are list prices written down once, not fetched:
 * they age, they ignore Savings Plans, Reserved Instances, Spot and Windows licence fees, and an
 * admin must check them (`PUT /api/v1/prices/{region}/{instanceType}` overrides one; see docs/cost.md).
 *
 * us-west-2 lists the same prices as us-east-1 for these families. For eu-west-1 and eu-central-1
 * the table applies the region's ratio to us-east-1 observed for the family class (e.g. g5.xlarge
 * 1.006 → 1.258 USD in Frankfurt), rounded to 4 decimals: close to the list, not the list.
 */
export const DEFAULT_PRICES_AS_OF = '2025-06';
export const DEFAULT_PRICE_CURRENCY = 'USD';

type Sizes = Record<string, number>;

/** us-east-1 prices per family and size. */
const US_EAST_1: Record<string, Sizes> = {
  // GPU: NVIDIA T4
  g4dn: { xlarge: 0.526, '2xlarge': 0.752, '4xlarge': 1.204, '8xlarge': 2.176, '12xlarge': 3.912, '16xlarge': 4.352 },
  // GPU: NVIDIA A10G
  g5: { xlarge: 1.006, '2xlarge': 1.212, '4xlarge': 1.624, '8xlarge': 2.448, '12xlarge': 5.672, '16xlarge': 4.096, '24xlarge': 8.144, '48xlarge': 16.288 },
  // GPU: NVIDIA L4
  g6: { xlarge: 0.8048, '2xlarge': 0.9776, '4xlarge': 1.3232, '8xlarge': 2.0144, '12xlarge': 4.6016, '16xlarge': 3.3968 },
  // GPU: NVIDIA L40S
  g6e: { xlarge: 1.861, '2xlarge': 2.2421, '4xlarge': 3.0042, '8xlarge': 4.5286, '12xlarge': 10.4926, '16xlarge': 7.5772 },
  // GPU: NVIDIA V100
  p3: { '2xlarge': 3.06, '8xlarge': 12.24, '16xlarge': 24.48 },
  // General purpose
  m5: { large: 0.096, xlarge: 0.192, '2xlarge': 0.384, '4xlarge': 0.768, '8xlarge': 1.536 },
  m6i: { large: 0.096, xlarge: 0.192, '2xlarge': 0.384, '4xlarge': 0.768, '8xlarge': 1.536 },
  m7i: { large: 0.1008, xlarge: 0.2016, '2xlarge': 0.4032, '4xlarge': 0.8064, '8xlarge': 1.6128 },
  // Compute optimised
  c5: { large: 0.085, xlarge: 0.17, '2xlarge': 0.34, '4xlarge': 0.68, '9xlarge': 1.53 },
  c6i: { large: 0.085, xlarge: 0.17, '2xlarge': 0.34, '4xlarge': 0.68, '8xlarge': 1.36 },
  // Burstable
  t3: { medium: 0.0416, large: 0.0832, xlarge: 0.1664, '2xlarge': 0.3328 },
};

type FamilyClass = 'gpu' | 'general' | 'compute' | 'burstable';
const CLASS_OF: Record<string, FamilyClass> = { g4dn: 'gpu', g5: 'gpu', g6: 'gpu', g6e: 'gpu', p3: 'gpu', m5: 'general', m6i: 'general', m7i: 'general', c5: 'compute', c6i: 'compute', t3: 'burstable' };

/** Region price ÷ us-east-1 price, per family class (from g4dn/g5, m5, c5 and t3 list prices). */
const REGION_FACTOR: Record<string, Record<FamilyClass, number>> = {
  'us-east-1': { gpu: 1, general: 1, compute: 1, burstable: 1 },
  'us-west-2': { gpu: 1, general: 1, compute: 1, burstable: 1 },
  'eu-west-1': { gpu: 1.116, general: 1.115, compute: 1.129, burstable: 1.096 },
  'eu-central-1': { gpu: 1.25, general: 1.198, compute: 1.141, burstable: 1.154 },
};

export interface DefaultPrice {
  instanceType: string;
  region: string;
  hourlyPrice: string;
  currency: string;
}

/** Every shipped (instance type, region) price, as decimal strings for the numeric column. */
export function defaultPrices(): DefaultPrice[] {
  const out: DefaultPrice[] = [];
  for (const [region, factors] of Object.entries(REGION_FACTOR)) {
    for (const [family, sizes] of Object.entries(US_EAST_1)) {
      const factor = factors[CLASS_OF[family]!];
      for (const [size, price] of Object.entries(sizes)) {
        const p = factor === 1 ? price : Math.round(price * factor * 10_000) / 10_000;
        out.push({ instanceType: `${family}.${size}`, region, hourlyPrice: p.toFixed(6), currency: DEFAULT_PRICE_CURRENCY });
      }
    }
  }
  return out;
}
